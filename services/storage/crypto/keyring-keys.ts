/**
 * Keys derived from the KEK and the operations that use them. HKDF-SHA256 (RFC 5869) splits the
 * KEK into three independent subkeys, salted with the keyring id, so that the key check value,
 * the file MAC and the key wrapping never share a key.
 */
import { createHmac } from 'node:crypto';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { associatedData, open, seal } from './aead';
import { constantTimeEqual, wipe } from './bytes';

const SUBKEY_SIZE = 32;

export interface KekSubkeys {
  /** Wraps and unwraps data keys. */
  wrap: Uint8Array;
  /** Keys the MAC over the whole keyring file. */
  mac: Uint8Array;
  /** Keys the key check value that tells a wrong password from a damaged file. */
  check: Uint8Array;
}

export function deriveSubkeys(kek: Uint8Array, keyringId: Uint8Array): KekSubkeys {
  const derive = (label: string) => hkdf(sha256, kek, keyringId, new TextEncoder().encode(`backtestr keyring ${label} v1`), SUBKEY_SIZE);
  return { wrap: derive('wrap'), mac: derive('mac'), check: derive('check') };
}

export function wipeSubkeys(subkeys: KekSubkeys | undefined): void {
  if (subkeys) wipe(subkeys.wrap, subkeys.mac, subkeys.check);
}

export function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', key).update(data).digest());
}

export function computeKeyCheck(subkeys: KekSubkeys, headerBytes: Uint8Array): Uint8Array {
  return hmacSha256(subkeys.check, headerBytes);
}

export function verifyMac(subkeys: KekSubkeys, macInput: Uint8Array, mac: Uint8Array): boolean {
  return constantTimeEqual(hmacSha256(subkeys.mac, macInput), mac);
}

export interface DataKeyBinding {
  keyringId: Uint8Array;
  keyId: Uint8Array;
  purpose: string;
  generation: number;
}

/**
 * Binds a wrapped key to its keyring, id, purpose and generation: a wrapped key moved to another
 * slot, another keyring or another generation fails to unwrap.
 */
function wrapAssociatedData(binding: DataKeyBinding): Uint8Array {
  return associatedData('backtestr keyring data key v1', binding.keyringId, binding.keyId, binding.purpose, binding.generation);
}

export function wrapDataKey(subkeys: KekSubkeys, dataKey: Uint8Array, binding: DataKeyBinding): Uint8Array {
  return seal(subkeys.wrap, dataKey, wrapAssociatedData(binding));
}

export function unwrapDataKey(subkeys: KekSubkeys, wrapped: Uint8Array, binding: DataKeyBinding): Uint8Array | null {
  return open(subkeys.wrap, wrapped, wrapAssociatedData(binding));
}
