/**
 * Header of every sealed store file (version 1), big-endian:
 *
 *   offset  size  field
 *   0       8     magic "BTSEALED"
 *   8       2     format version (1)
 *   10      1     kind: 1 snapshot, 2 journal
 *   11      1     reserved, 0
 *   12      16    keyring id of the profile the file belongs to
 *   28      16    key id of the 'store' data key that sealed it
 *   44      4     generation of that data key
 *   48      8     file number: snapshot N and journal N form one store state
 *   56      8     commit sequence: the last commit a snapshot contains, or the one a journal
 *                 starts after
 *   64      32    salt: random per file, input to the file's own AES key (file-cipher.ts)
 *   96      16    header tag: AES-256-GCM over zero bytes with the 96 header bytes as associated data
 *
 * The header bytes are also associated data of every chunk in the file, so changing any of them,
 * or moving a chunk into another file, fails authentication.
 */
import { BacktestrError } from '../../../protocol/errors';

export const FILE_MAGIC = Buffer.from('BTSEALED', 'latin1');
export const FILE_FORMAT_VERSION = 1;
export const HEADER_SIZE = 96;
export const HEADER_TAG_SIZE = 16;
export const SALT_SIZE = 32;
const ID_SIZE = 16;

export type SealedFileKind = 'snapshot' | 'journal';
const KIND_CODES: Record<SealedFileKind, number> = { snapshot: 1, journal: 2 };

export interface SealedFileHeader {
  kind: SealedFileKind;
  keyringId: Uint8Array;
  keyId: Uint8Array;
  keyGeneration: number;
  fileNumber: number;
  commitSequence: number;
  salt: Uint8Array;
}

export function encodeHeader(header: SealedFileHeader): Buffer {
  const bytes = Buffer.alloc(HEADER_SIZE);
  FILE_MAGIC.copy(bytes, 0);
  bytes.writeUInt16BE(FILE_FORMAT_VERSION, 8);
  bytes.writeUInt8(KIND_CODES[header.kind], 10);
  copyExact(header.keyringId, bytes, 12, ID_SIZE, 'keyring id');
  copyExact(header.keyId, bytes, 28, ID_SIZE, 'key id');
  bytes.writeUInt32BE(header.keyGeneration, 44);
  bytes.writeBigUInt64BE(BigInt(header.fileNumber), 48);
  bytes.writeBigUInt64BE(BigInt(header.commitSequence), 56);
  copyExact(header.salt, bytes, 64, SALT_SIZE, 'salt');
  return bytes;
}

/**
 * Decodes the header fields without authenticating them: the caller checks the header tag with
 * the file's key before trusting any field. `fileName` names the file in errors.
 */
export function decodeHeader(bytes: Uint8Array, fileName: string): SealedFileHeader {
  if (bytes.length < HEADER_SIZE) throw sealedFileError(fileName, `file is ${bytes.length} bytes, shorter than its ${HEADER_SIZE}-byte header`);
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, HEADER_SIZE);
  if (!view.subarray(0, 8).equals(FILE_MAGIC)) throw sealedFileError(fileName, 'not a sealed store file (wrong magic bytes)');
  const version = view.readUInt16BE(8);
  if (version !== FILE_FORMAT_VERSION) throw sealedFileError(fileName, `unsupported format version ${version}; expected ${FILE_FORMAT_VERSION}`);
  const kindCode = view.readUInt8(10);
  const kind = (Object.keys(KIND_CODES) as SealedFileKind[]).find((name) => KIND_CODES[name] === kindCode);
  if (kind === undefined || view.readUInt8(11) !== 0) throw sealedFileError(fileName, `unknown file kind ${kindCode}`);

  const fileNumber = view.readBigUInt64BE(48);
  const commitSequence = view.readBigUInt64BE(56);
  if (fileNumber > BigInt(Number.MAX_SAFE_INTEGER) || commitSequence > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw sealedFileError(fileName, 'file number or commit sequence out of range');
  }
  return {
    kind,
    keyringId: new Uint8Array(view.subarray(12, 28)),
    keyId: new Uint8Array(view.subarray(28, 44)),
    keyGeneration: view.readUInt32BE(44),
    fileNumber: Number(fileNumber),
    commitSequence: Number(commitSequence),
    salt: new Uint8Array(view.subarray(64, 96)),
  };
}

/** E_INTEGRITY naming the file: the error every failed check of a sealed file raises. */
export function sealedFileError(fileName: string, reason: string): BacktestrError {
  // The advice comes last and only once, because some reasons already name what to restore.
  const advice = /restore/.test(reason) ? '' : '; nothing was changed: restore the profile directory from a backup, or put the original file back';
  return new BacktestrError('E_INTEGRITY', `sealed store file ${fileName} failed verification: ${reason}${advice}`, { file: fileName, reason });
}

function copyExact(source: Uint8Array, target: Buffer, offset: number, size: number, name: string): void {
  if (source.length !== size) throw new BacktestrError('E_INTERNAL', `${name} must be ${size} bytes, got ${source.length}`);
  target.set(source, offset);
}
