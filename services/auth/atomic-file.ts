/**
 * Crash-safe writes for small state files: write a temporary file, fsync it, move it into place,
 * then fsync the directory. rename(2) is atomic on POSIX file systems, but the new directory entry
 * survives a power loss only once the directory itself is synced.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { BacktestrError } from '../../protocol/errors';

export const STATE_DIR_MODE = 0o700;
export const STATE_FILE_MODE = 0o600;

/** Creates `dir` if needed and forces mode 0700, also on a directory that already existed. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: STATE_DIR_MODE });
  await fs.chmod(dir, STATE_DIR_MODE);
}

export interface AtomicWriteOptions {
  /**
   * When true, fails with an EEXIST error instead of replacing an existing file. The final step
   * is then link(2), which never overwrites, so two writers cannot both succeed.
   */
  exclusive?: boolean;
}

/** Writes `data` to `filePath` with mode 0600 so that readers see the old or the new file, never a partial one. */
export async function writeFileAtomic(filePath: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const dir = path.dirname(filePath);
  const tempPath = path.join(dir, `.${path.basename(filePath)}.${randomBytes(6).toString('hex')}.tmp`);

  const handle = await fs.open(tempPath, 'wx', STATE_FILE_MODE);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }

  try {
    if (options.exclusive) {
      await fs.link(tempPath, filePath);
      await fs.unlink(tempPath);
    } else {
      await fs.rename(tempPath, filePath);
    }
  } catch (error) {
    await fs.rm(tempPath, { force: true });
    throw error;
  }

  await syncDir(dir);
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Reads a file, returning null only when it does not exist; any other error propagates. */
export async function readFileIfExists(filePath: string, maxBytes: number): Promise<Buffer | null> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(filePath, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  try {
    const { size } = await handle.stat();
    // Cap before allocating: state files are small, so a large one is corrupt or planted.
    if (size > maxBytes) {
      throw new BacktestrError('E_INTERNAL', `state file ${path.basename(filePath)} is ${size} bytes, limit is ${maxBytes}`, {
        file: path.basename(filePath),
      });
    }
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}
