/**
 * Creating and opening sealed store files: the header, its tag, and the checks that bind a file
 * to this profile's keyring, to a 'store' key generation and to its place in the store.
 *
 * Chunks after the header are framed as a 4-byte big-endian word, whose top bit marks the last
 * chunk of a snapshot and whose low 31 bits give the sealed length, followed by the sealed bytes.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { BacktestrError } from '../../../protocol/errors';
import { constantTimeEqual, fromHex } from '../crypto/bytes';
import { PRIVATE_FILE_MODE } from '../../runtime/atomic-file';
import type { Keyring } from '../crypto/keyring';
import { FileCipher, TAG_SIZE } from './file-cipher';
import { decodeHeader, HEADER_SIZE, HEADER_TAG_SIZE, SALT_SIZE, sealedFileError, type SealedFileHeader, type SealedFileKind } from './file-header';

/** Keyring purpose whose data keys seal the store. */
export const STORE_PURPOSE = 'store';
export const PREFIX_SIZE = 4;
export const FINAL_FLAG = 0x8000_0000;
/** Maximum sealed chunk size: a journal record contains one whole import or backtest. */
export const MAX_SEALED_CHUNK = 0x7fff_ffff;

export interface SealedFile {
  handle: FileHandle;
  header: SealedFileHeader;
  cipher: FileCipher;
  fileName: string;
  /** Offset of the first chunk. */
  bodyOffset: number;
  size: number;
}

/**
 * Creates `file` (it must not exist) with a header sealed under the current 'store' key and
 * returns it open for writing. The caller syncs and closes it.
 */
export async function createSealedFile(
  file: string,
  keyring: Keyring,
  fields: { kind: SealedFileKind; fileNumber: number; commitSequence: number },
): Promise<SealedFile> {
  const key = keyring.currentKey(STORE_PURPOSE);
  const header: SealedFileHeader = {
    ...fields,
    keyringId: keyring.keyringIdBytes,
    keyId: fromHex(key.keyId),
    keyGeneration: key.generation,
    salt: new Uint8Array(randomBytes(SALT_SIZE)),
  };
  const cipher = new FileCipher(key.key, header);
  const handle = await open(file, 'wx', PRIVATE_FILE_MODE);
  try {
    await handle.write(Buffer.concat([cipher.headerBytes, cipher.headerTag()]));
  } catch (error) {
    await handle.close();
    throw error;
  }
  return { handle, header, cipher, fileName: path.basename(file), bodyOffset: HEADER_SIZE + HEADER_TAG_SIZE, size: HEADER_SIZE + HEADER_TAG_SIZE };
}

/**
 * Opens `file` and verifies its header: kind, keyring id, key id and generation, file number,
 * then the header tag. Every failure is E_INTEGRITY naming the file; a missing file is too,
 * because the keyring records that it should exist.
 */
export async function openSealedFile(
  file: string,
  keyring: Keyring,
  expected: { kind: SealedFileKind; fileNumber: number },
  flags: 'r' | 'r+' = 'r',
): Promise<SealedFile> {
  const fileName = path.basename(file);
  let handle: FileHandle;
  try {
    // O_NOFOLLOW: a link planted in place of a journal would otherwise receive its appends.
    // O_NONBLOCK: a FIFO planted there would otherwise block the open; the type check follows.
    handle = await open(file, (flags === 'r' ? constants.O_RDONLY : constants.O_RDWR) | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw sealedFileError(fileName, 'file is missing');
    if (code === 'ELOOP') throw sealedFileError(fileName, 'file is a symbolic link');
    if (code === 'EACCES' || code === 'EPERM') {
      throw new BacktestrError('E_STORAGE', `cannot open ${fileName}: permission denied; a file restored by another user must belong to the profile's owner again (restarting the kernel repairs ownership)`, { file: fileName, reason: 'permission denied' });
    }
    throw error;
  }

  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw sealedFileError(fileName, 'not a regular file');
    const start = Buffer.alloc(HEADER_SIZE + HEADER_TAG_SIZE);
    const { bytesRead } = await handle.read(start, 0, start.length, 0);
    if (bytesRead < start.length) throw sealedFileError(fileName, `file is ${stats.size} bytes, shorter than its header`);

    const header = decodeHeader(start, fileName);
    if (header.kind !== expected.kind) throw sealedFileError(fileName, `file is a ${header.kind}, expected a ${expected.kind}`);
    if (!constantTimeEqual(header.keyringId, keyring.keyringIdBytes)) throw sealedFileError(fileName, 'file belongs to another profile (keyring id differs)');
    if (header.fileNumber !== expected.fileNumber) {
      throw sealedFileError(fileName, `file number is ${header.fileNumber}, expected ${expected.fileNumber} (a copy of another store file)`);
    }

    const key = storeKeyFor(keyring, header.keyGeneration, fileName);
    if (!constantTimeEqual(header.keyId, fromHex(key.keyId))) throw sealedFileError(fileName, 'key id does not match the keyring');
    const cipher = new FileCipher(key.key, header);
    cipher.checkHeaderTag(start.subarray(HEADER_SIZE), fileName);
    return { handle, header, cipher, fileName, bodyOffset: start.length, size: stats.size };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/**
 * Reads the chunk at `offset`. Returns null when fewer bytes remain than the chunk's frame
 * announces, as after a torn write at the end of a journal. The caller decides what that means.
 */
export async function readChunk(file: SealedFile, offset: number): Promise<{ final: boolean; sealed: Buffer; next: number } | null> {
  if (offset + PREFIX_SIZE > file.size) return null;
  const prefix = Buffer.alloc(PREFIX_SIZE);
  await readExactly(file, prefix, offset);
  const word = prefix.readUInt32BE(0);
  const length = word & MAX_SEALED_CHUNK;
  if (length < TAG_SIZE) throw sealedFileError(file.fileName, `chunk at byte ${offset} has invalid length ${length}`);
  if (offset + PREFIX_SIZE + length > file.size) return null;
  const sealed = Buffer.allocUnsafe(length);
  await readExactly(file, sealed, offset + PREFIX_SIZE);
  return { final: (word & FINAL_FLAG) !== 0, sealed, next: offset + PREFIX_SIZE + length };
}

/** Frames sealed bytes with their length word. */
export function frameChunk(sealed: Uint8Array, final: boolean): Buffer {
  if (sealed.length > MAX_SEALED_CHUNK) throw new BacktestrError('E_INVALID_PARAMS', `sealed chunk of ${sealed.length} bytes exceeds the ${MAX_SEALED_CHUNK}-byte limit`);
  const prefix = Buffer.alloc(PREFIX_SIZE);
  prefix.writeUInt32BE((sealed.length | (final ? FINAL_FLAG : 0)) >>> 0, 0);
  return prefix;
}

function storeKeyFor(keyring: Keyring, generation: number, fileName: string) {
  try {
    return keyring.keyFor(STORE_PURPOSE, generation);
  } catch (error) {
    if (error instanceof BacktestrError && error.code === 'E_NOT_FOUND') {
      throw sealedFileError(fileName, `sealed with 'store' key generation ${generation}, which the keyring does not hold`);
    }
    throw error;
  }
}

async function readExactly(file: SealedFile, target: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < target.length) {
    const { bytesRead } = await file.handle.read(target, done, target.length - done, position + done);
    if (bytesRead === 0) throw sealedFileError(file.fileName, `file ended at byte ${position + done} inside a chunk`);
    done += bytesRead;
  }
}
