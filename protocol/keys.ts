/**
 * Channel keys. The kernel draws a fresh 32-byte secret per service spawn (or per client
 * handshake) and both ends derive one key per direction with HKDF-SHA256 (RFC 5869). Separate
 * direction keys mean an envelope reflected back to its sender fails authentication, and since
 * each key's nonces are its own sequence numbers, no (key, nonce) pair repeats within a channel.
 */
import { randomBytes } from 'node:crypto';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { BacktestrError } from './errors';

export const CHANNEL_SECRET_SIZE = 32;
const KEY_SIZE = 32;
const KEY_INFO_PREFIX = 'backtestr envelope v1 ';

export interface DirectionKeys {
  /** Key for envelopes this end sends. */
  send: Uint8Array;
  /** Key for envelopes this end receives. */
  receive: Uint8Array;
}

export function newChannelSecret(): Uint8Array {
  return new Uint8Array(randomBytes(CHANNEL_SECRET_SIZE));
}

function deriveKey(secret: Uint8Array, from: number, to: number, salt?: Uint8Array): Uint8Array {
  const info = new TextEncoder().encode(`${KEY_INFO_PREFIX}${from}->${to}`);
  return hkdf(sha256, secret, salt, info, KEY_SIZE);
}

/**
 * Derives the two keys of the channel between peers `self` and `peer` from their shared secret.
 * The two ends get the same pair of keys, swapped.
 */
export function deriveDirectionKeys(secret: Uint8Array, self: number, peer: number, salt?: Uint8Array): DirectionKeys {
  if (secret.length !== CHANNEL_SECRET_SIZE) {
    throw new BacktestrError('E_INTERNAL', `channel secret must be ${CHANNEL_SECRET_SIZE} bytes, got ${secret.length}`);
  }
  return { send: deriveKey(secret, self, peer, salt), receive: deriveKey(secret, peer, self, salt) };
}

/** Overwrites key material. JS gives no guarantee that no other copy exists (GC may have moved it). */
export function wipe(...buffers: (Uint8Array | undefined)[]): void {
  for (const buffer of buffers) buffer?.fill(0);
}
