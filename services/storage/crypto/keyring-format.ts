/**
 * Binary layout of the keyring file (version 1), big-endian:
 *
 *   offset  size  field
 *   0       4     magic "BTKR"
 *   4       2     format version (1)
 *   6       16    keyring id (random, fixed for the keyring's life)
 *   22      4     Argon2id memory cost in KiB
 *   26      4     Argon2id time cost (passes)
 *   30      4     Argon2id parallelism (lanes)
 *   34      16    Argon2id salt (new on every password change)
 *   ------------- header: everything above is needed before the KEK can be derived
 *   50      32    key check value: HMAC-SHA256(check key, header)
 *   82      8     revision: raised by one on every rewrite of the file
 *   90      2     number of wrapped keys, then per key:
 *                   16 key id | 1 purpose length | purpose | 4 generation | 72 wrapped key
 *   ..      2     number of counters, then per counter: 1 name length | name | 8 value
 *   ..      32    MAC: HMAC-SHA256(MAC key, every byte above)
 *   ..      32    checksum: SHA-256(every byte above, MAC included)
 *
 * The unkeyed checksum is there to tell damage from a wrong password: without it, a changed salt
 * or cost would derive another KEK and look exactly like a wrong password.
 */
import { createHash } from 'node:crypto';
import { BacktestrError } from '../../../protocol/errors';
import { AEAD_KEY_SIZE, AEAD_OVERHEAD } from './aead';
import { ByteReader, ByteWriter, constantTimeEqual } from './bytes';
import { SALT_SIZE, type Argon2Params } from './kdf';

export const KEYRING_MAGIC = new Uint8Array([0x42, 0x54, 0x4b, 0x52]);
export const KEYRING_FORMAT_VERSION = 1;
export const KEYRING_ID_SIZE = 16;
export const KEY_ID_SIZE = 16;
export const KEY_CHECK_SIZE = 32;
export const MAC_SIZE = 32;
export const CHECKSUM_SIZE = 32;
export const HEADER_SIZE = 4 + 2 + KEYRING_ID_SIZE + 12 + SALT_SIZE;
export const WRAPPED_KEY_SIZE = AEAD_KEY_SIZE + AEAD_OVERHEAD;
export const MAX_KEYRING_BYTES = 64 * 1024;
export const MAX_WRAPPED_KEYS = 256;
export const MAX_COUNTERS = 64;

/** Purpose and counter names: lower-case ASCII, so they encode the same everywhere. */
export const NAME_PATTERN = /^[a-z][a-z0-9-]{0,31}$/;

export interface KeyringHeader {
  keyringId: Uint8Array;
  kdf: Argon2Params;
  salt: Uint8Array;
}

export interface WrappedKeyRecord {
  keyId: Uint8Array;
  purpose: string;
  generation: number;
  /** Data key sealed under the wrap key (see keyring-keys.ts for its associated data). */
  wrapped: Uint8Array;
}

export interface KeyringRecord {
  header: KeyringHeader;
  keyCheck: Uint8Array;
  revision: number;
  keys: WrappedKeyRecord[];
  counters: Map<string, number>;
}

export interface DecodedKeyring {
  record: KeyringRecord;
  /** The encoded header, the input of the key check value. */
  headerBytes: Uint8Array;
  /** Every byte the MAC covers. */
  macInput: Uint8Array;
  mac: Uint8Array;
}

export function integrityError(fileName: string, reason: string): BacktestrError {
  return new BacktestrError('E_INTEGRITY', `keyring file ${fileName} failed its integrity check (${reason}); restore it from a backup`, {
    file: fileName,
  });
}

export function encodeHeader(header: KeyringHeader): Uint8Array {
  return new ByteWriter()
    .bytes(KEYRING_MAGIC)
    .u16(KEYRING_FORMAT_VERSION)
    .bytes(header.keyringId)
    .u32(header.kdf.memoryKiB)
    .u32(header.kdf.timeCost)
    .u32(header.kdf.parallelism)
    .bytes(header.salt)
    .finish();
}

/** Encodes everything the MAC covers. */
export function encodeMacInput(record: KeyringRecord): Uint8Array {
  const writer = new ByteWriter().bytes(encodeHeader(record.header)).bytes(record.keyCheck).u64(record.revision);
  writer.u16(record.keys.length);
  for (const key of record.keys) {
    writer.bytes(key.keyId).string(key.purpose, 1).u32(key.generation).bytes(key.wrapped);
  }
  writer.u16(record.counters.size);
  for (const [name, value] of record.counters) writer.string(name, 1).u64(value);
  return writer.finish();
}

/** Appends the MAC and the checksum to `macInput`. */
export function finishKeyringFile(macInput: Uint8Array, mac: Uint8Array): Uint8Array {
  const body = new ByteWriter().bytes(macInput).bytes(mac).finish();
  return new ByteWriter().bytes(body).bytes(sha256(body)).finish();
}

/**
 * Checks the checksum, then parses the structure. Everything cryptographic (key check, MAC,
 * unwrapping) is the caller's next step, because it needs the password.
 */
export function decodeKeyring(file: Uint8Array, fileName: string): DecodedKeyring {
  const malformed = (reason: string) => integrityError(fileName, reason);
  if (file.length < HEADER_SIZE + KEY_CHECK_SIZE + MAC_SIZE + CHECKSUM_SIZE) throw malformed(`file is only ${file.length} bytes`);

  const body = file.subarray(0, file.length - CHECKSUM_SIZE);
  if (!constantTimeEqual(sha256(body), file.subarray(file.length - CHECKSUM_SIZE))) throw malformed('checksum mismatch');

  const reader = new ByteReader(body, malformed);
  const magic = reader.bytes(4);
  if (!constantTimeEqual(magic, KEYRING_MAGIC)) throw malformed('not a keyring file');
  const version = reader.u16();
  if (version !== KEYRING_FORMAT_VERSION) throw malformed(`unsupported format version ${version}`);
  const keyringId = reader.bytes(KEYRING_ID_SIZE);
  const kdf: Argon2Params = { memoryKiB: reader.u32(), timeCost: reader.u32(), parallelism: reader.u32() };
  const salt = reader.bytes(SALT_SIZE);
  const headerBytes = body.slice(0, reader.position);

  const keyCheck = reader.bytes(KEY_CHECK_SIZE);
  const revision = reader.u64();

  const keyCount = reader.u16();
  if (keyCount > MAX_WRAPPED_KEYS) throw malformed(`${keyCount} wrapped keys, limit is ${MAX_WRAPPED_KEYS}`);
  const keys: WrappedKeyRecord[] = [];
  for (let i = 0; i < keyCount; i++) {
    const keyId = reader.bytes(KEY_ID_SIZE);
    const purpose = reader.string(1);
    if (!NAME_PATTERN.test(purpose)) throw malformed(`invalid purpose name in key ${i}`);
    keys.push({ keyId, purpose, generation: reader.u32(), wrapped: reader.bytes(WRAPPED_KEY_SIZE) });
  }

  const counterCount = reader.u16();
  if (counterCount > MAX_COUNTERS) throw malformed(`${counterCount} counters, limit is ${MAX_COUNTERS}`);
  const counters = new Map<string, number>();
  for (let i = 0; i < counterCount; i++) {
    const name = reader.string(1);
    if (!NAME_PATTERN.test(name) || counters.has(name)) throw malformed(`invalid or repeated counter name in counter ${i}`);
    counters.set(name, reader.u64());
  }

  const macInput = body.slice(0, reader.position);
  const mac = reader.bytes(MAC_SIZE);
  reader.end();

  return { record: { header: { keyringId, kdf, salt }, keyCheck, revision, keys, counters }, headerBytes, macInput, mac };
}

function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest());
}
