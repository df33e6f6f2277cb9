/** File-system steps shared by the sealed store's writers. */
import { open, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';

/** Fsyncs the directory that contains `file`, so that a rename or a new name in it is durable. */
export async function syncDirectory(file: string): Promise<void> {
  const directory = await open(path.dirname(file), 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

/**
 * Closes a file that is being abandoned because of `reason`. A close failure is attached to
 * `reason` as `closeError` instead of replacing it, because the first failure explains the state.
 */
export async function closeAfterFailure(handle: FileHandle, reason: unknown): Promise<void> {
  try {
    await handle.close();
  } catch (closeError) {
    if (reason instanceof Error) Object.assign(reason, { closeError });
  }
}
