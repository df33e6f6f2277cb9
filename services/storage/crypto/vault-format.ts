/**
 * Binary layout of the secrets vault file (version 1), big-endian:
 *
 *   offset  size  field
 *   0       4     magic "BTVT"
 *   4       2     format version (1)
 *   6       16    id of the keyring whose 'vault' key seals this file
 *   22      16    id of that data key
 *   38      4     generation of that data key
 *   42      8     revision: raised by one on every rewrite, mirrored in the keyring's MAC'd counters
 *   50      ..    sealed body: XChaCha20-Poly1305 under the vault key, nonce first, the header
 *                 above as associated data
 *
 * Body (plaintext inside the seal): 4 entry count, then per entry:
 *   2 name length | name (UTF-8) | 16 secret id | 4 generation of the vault key that wraps the
 *   secret key | 72 wrapped secret key | 4 sealed value length | sealed value
 *
 * Because the whole body is one AEAD message, entries cannot be swapped, dropped or replayed
 * one by one; the header binds it to one keyring, key and revision.
 */
import { BacktestrError } from '../../../protocol/errors';
import { AEAD_OVERHEAD } from './aead';
import { ByteReader, ByteWriter, constantTimeEqual } from './bytes';
import { KEY_ID_SIZE, KEYRING_ID_SIZE, WRAPPED_KEY_SIZE } from './keyring-format';

export const VAULT_MAGIC = new Uint8Array([0x42, 0x54, 0x56, 0x54]);
export const VAULT_FORMAT_VERSION = 1;
export const VAULT_HEADER_SIZE = 4 + 2 + KEYRING_ID_SIZE + KEY_ID_SIZE + 4 + 8;
export const SECRET_ID_SIZE = 16;
export const MAX_SECRETS = 256;
export const MAX_SECRET_BYTES = 16 * 1024;
export const MAX_NAME_LENGTH = 128;
export const MAX_VAULT_BYTES = 8 * 1024 * 1024;

export interface VaultHeader {
  keyringId: Uint8Array;
  keyId: Uint8Array;
  generation: number;
  revision: number;
}

export interface VaultEntry {
  name: string;
  secretId: Uint8Array;
  /** Generation of the vault data key that wraps `wrappedKey`. */
  generation: number;
  wrappedKey: Uint8Array;
  sealedValue: Uint8Array;
}

export function vaultIntegrityError(fileName: string, reason: string): BacktestrError {
  return new BacktestrError('E_INTEGRITY', `vault file ${fileName} failed its integrity check (${reason}); restore the profile from a backup`, {
    file: fileName,
  });
}

export function encodeVaultHeader(header: VaultHeader): Uint8Array {
  return new ByteWriter()
    .bytes(VAULT_MAGIC)
    .u16(VAULT_FORMAT_VERSION)
    .bytes(header.keyringId)
    .bytes(header.keyId)
    .u32(header.generation)
    .u64(header.revision)
    .finish();
}

/** Splits a vault file into its header and sealed body; the body is not authenticated yet. */
export function decodeVaultFile(file: Uint8Array, fileName: string): { header: VaultHeader; headerBytes: Uint8Array; sealedBody: Uint8Array } {
  const reader = new ByteReader(file, (reason) => vaultIntegrityError(fileName, reason));
  if (file.length < VAULT_HEADER_SIZE + AEAD_OVERHEAD) throw vaultIntegrityError(fileName, `file is only ${file.length} bytes`);
  if (!constantTimeEqual(reader.bytes(4), VAULT_MAGIC)) throw vaultIntegrityError(fileName, 'not a vault file');
  const version = reader.u16();
  if (version !== VAULT_FORMAT_VERSION) throw vaultIntegrityError(fileName, `unsupported format version ${version}`);
  const header: VaultHeader = { keyringId: reader.bytes(KEYRING_ID_SIZE), keyId: reader.bytes(KEY_ID_SIZE), generation: reader.u32(), revision: reader.u64() };
  return { header, headerBytes: file.slice(0, VAULT_HEADER_SIZE), sealedBody: file.slice(VAULT_HEADER_SIZE) };
}

export function encodeVaultBody(entries: readonly VaultEntry[]): Uint8Array {
  const writer = new ByteWriter().u32(entries.length);
  for (const entry of entries) {
    writer.string(entry.name, 2).bytes(entry.secretId).u32(entry.generation).bytes(entry.wrappedKey).u32(entry.sealedValue.length).bytes(entry.sealedValue);
  }
  return writer.finish();
}

/** Parses an authenticated body; a malformed one means the writer was faulty, still E_INTEGRITY. */
export function decodeVaultBody(body: Uint8Array, fileName: string): VaultEntry[] {
  const reader = new ByteReader(body, (reason) => vaultIntegrityError(fileName, reason));
  const count = reader.u32();
  if (count > MAX_SECRETS) throw vaultIntegrityError(fileName, `${count} secrets, limit is ${MAX_SECRETS}`);
  const entries: VaultEntry[] = [];
  for (let i = 0; i < count; i++) {
    const name = reader.string(2);
    const secretId = reader.bytes(SECRET_ID_SIZE);
    const generation = reader.u32();
    const wrappedKey = reader.bytes(WRAPPED_KEY_SIZE);
    const valueLength = reader.u32();
    if (valueLength > MAX_SECRET_BYTES + AEAD_OVERHEAD) throw vaultIntegrityError(fileName, `secret ${i} is ${valueLength} bytes`);
    entries.push({ name, secretId, generation, wrappedKey, sealedValue: reader.bytes(valueLength) });
  }
  reader.end();
  return entries;
}
