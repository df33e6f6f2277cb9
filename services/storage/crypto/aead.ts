/**
 * XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha) from @noble/ciphers with a fresh random 24-byte
 * nonce per message. With 192-bit random nonces a repeat under one key is negligible for any
 * number of messages, so no nonce counter has to survive a crash. The payloads here (32-byte keys,
 * small secrets, a vault of a few KiB) are too small for node:crypto's faster AES-GCM to matter.
 *
 * Sealed form: nonce (24) | ciphertext | tag (16).
 */
import { randomBytes } from 'node:crypto';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { BacktestrError } from '../../../protocol/errors';
import { ByteWriter } from './bytes';

export const AEAD_KEY_SIZE = 32;
export const AEAD_NONCE_SIZE = 24;
export const AEAD_TAG_SIZE = 16;
export const AEAD_OVERHEAD = AEAD_NONCE_SIZE + AEAD_TAG_SIZE;

function checkKey(key: Uint8Array): void {
  if (key.length !== AEAD_KEY_SIZE) {
    throw new BacktestrError('E_INTERNAL', `AEAD key must be ${AEAD_KEY_SIZE} bytes, got ${key.length}`);
  }
}

export function seal(key: Uint8Array, plaintext: Uint8Array, associatedData: Uint8Array): Uint8Array {
  checkKey(key);
  const nonce = new Uint8Array(randomBytes(AEAD_NONCE_SIZE));
  const ciphertext = xchacha20poly1305(key, nonce, associatedData).encrypt(plaintext);
  const out = new Uint8Array(AEAD_NONCE_SIZE + ciphertext.length);
  out.set(nonce, 0);
  out.set(ciphertext, AEAD_NONCE_SIZE);
  return out;
}

/**
 * Returns the plaintext, or null when the tag does not verify (wrong key, changed bytes or
 * different associated data). The library checks the tag before it decrypts anything; callers
 * turn null into their own error that names the file.
 */
export function open(key: Uint8Array, sealed: Uint8Array, associatedData: Uint8Array): Uint8Array | null {
  checkKey(key);
  if (sealed.length < AEAD_OVERHEAD) return null;
  const nonce = sealed.subarray(0, AEAD_NONCE_SIZE);
  try {
    return xchacha20poly1305(key, nonce, associatedData).decrypt(sealed.subarray(AEAD_NONCE_SIZE));
  } catch (error) {
    // Lengths are checked above, so the only failure left is authentication.
    if (error instanceof Error) return null;
    throw error;
  }
}

/**
 * Builds associated data from a domain label and fields, each field prefixed by its length, so
 * that no two different field lists encode to the same bytes.
 */
export function associatedData(label: string, ...fields: (Uint8Array | string | number)[]): Uint8Array {
  const writer = new ByteWriter().string(label, 1);
  for (const field of fields) {
    if (typeof field === 'number') writer.u16(8).u64(field);
    else if (typeof field === 'string') writer.string(field, 2);
    else writer.u16(field.length).bytes(field);
  }
  return writer.finish();
}
