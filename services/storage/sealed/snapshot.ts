/**
 * Snapshot files: the whole DuckDB database file after a CHECKPOINT, sealed in 1 MiB chunks.
 * A snapshot is written under a temporary name, synced and renamed, so a snapshot file that
 * exists under its final name is always complete. The last chunk carries the final flag, bound
 * into its tag, so a snapshot cut at a chunk boundary is detected.
 */
import { open, rename, rm } from 'node:fs/promises';
import { BacktestrError } from '../../../protocol/errors';
import type { Keyring } from '../crypto/keyring';
import { closeAfterFailure, syncDirectory } from './directory';
import { PRIVATE_FILE_MODE } from '../../runtime/atomic-file';
import { createSealedFile, frameChunk, openSealedFile, readChunk } from './sealed-file';
import { sealedFileError } from './file-header';

export const SNAPSHOT_CHUNK_SIZE = 1024 * 1024;
const FINAL_CONTEXT = Buffer.from([1]);
const MIDDLE_CONTEXT = Buffer.from([0]);

/**
 * Seals the plaintext database file `source` into the snapshot `target`, recording that it
 * contains every commit up to `commitSequence`. Returns the sealed file's size in bytes and the
 * generation of the 'store' key that sealed it.
 */
export async function writeSnapshot(
  source: string,
  target: string,
  keyring: Keyring,
  fields: { fileNumber: number; commitSequence: number },
): Promise<{ bytes: number; keyGeneration: number }> {
  const partial = `${target}.partial`;
  await rm(partial, { force: true });
  const sealedFile = await createSealedFile(partial, keyring, { kind: 'snapshot', ...fields });
  let closed = false;
  const input = await open(source, 'r');
  try {
    const size = (await input.stat()).size;
    const buffer = Buffer.allocUnsafe(SNAPSHOT_CHUNK_SIZE);
    let position = 0;
    let index = 1;
    let written = sealedFile.bodyOffset;
    // An empty database file still gets one (empty) final chunk, so every snapshot ends in one.
    do {
      const length = Math.min(SNAPSHOT_CHUNK_SIZE, size - position);
      await readFully(input, buffer, length, position);
      const final = position + length >= size;
      const sealed = sealedFile.cipher.seal(index, buffer.subarray(0, length), final ? FINAL_CONTEXT : MIDDLE_CONTEXT);
      const frame = frameChunk(sealed, final);
      await sealedFile.handle.writev([frame, sealed]);
      written += frame.length + sealed.length;
      position += length;
      index++;
    } while (position < size);
    buffer.fill(0);
    await sealedFile.handle.sync();
    closed = true;
    await sealedFile.handle.close();
    await rename(partial, target);
    await syncDirectory(target);
    return { bytes: written, keyGeneration: sealedFile.header.keyGeneration };
  } catch (error) {
    if (!closed) await closeAfterFailure(sealedFile.handle, error);
    await rm(partial, { force: true });
    throw error;
  } finally {
    await input.close();
  }
}

/**
 * Verifies the snapshot `source` chunk by chunk and writes its plaintext to `target` (a new file
 * in the RAM-backed directory). Returns the commit sequence the snapshot contains and the
 * generation of the key that sealed it.
 */
export async function restoreSnapshot(source: string, target: string, keyring: Keyring, fileNumber: number): Promise<{ commitSequence: number; keyGeneration: number }> {
  const sealedFile = await openSealedFile(source, keyring, { kind: 'snapshot', fileNumber });
  const output = await open(target, 'wx', PRIVATE_FILE_MODE);
  try {
    let offset = sealedFile.bodyOffset;
    let index = 1;
    let position = 0;
    for (;;) {
      const chunk = await readChunk(sealedFile, offset);
      if (chunk === null) throw sealedFileError(sealedFile.fileName, `file ends at byte ${sealedFile.size} before its final chunk (truncated)`);
      const plaintext = sealedFile.cipher.open(index, chunk.sealed, chunk.final ? FINAL_CONTEXT : MIDDLE_CONTEXT);
      if (plaintext === null) throw sealedFileError(sealedFile.fileName, `chunk ${index} at byte ${offset} does not authenticate`);
      await output.write(plaintext, 0, plaintext.length, position);
      position += plaintext.length;
      plaintext.fill(0);
      offset = chunk.next;
      index++;
      if (chunk.final) break;
    }
    if (offset !== sealedFile.size) throw sealedFileError(sealedFile.fileName, `${sealedFile.size - offset} unexpected bytes after the final chunk`);
    return { commitSequence: sealedFile.header.commitSequence, keyGeneration: sealedFile.header.keyGeneration };
  } finally {
    await output.close();
    await sealedFile.handle.close();
  }
}

async function readFully(input: Awaited<ReturnType<typeof open>>, buffer: Buffer, length: number, position: number): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await input.read(buffer, done, length - done, position + done);
    if (bytesRead === 0) throw new BacktestrError('E_STORAGE', 'database file shrank while it was being sealed');
    done += bytesRead;
  }
}
