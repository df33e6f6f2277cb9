/**
 * The control handshake between an external client (desktop shell, CLI, auditor) and the kernel.
 *
 * The kernel writes a fresh 32-byte control key to a 0600 file in its 0700 runtime directory at
 * start; only the same user can read it. A client proves it holds the key and both sides agree
 * on a per-connection secret:
 *
 *   client -> kernel  HELLO    magic "BTH1" | client nonce (32) | HMAC-SHA256(key, "hello" | client nonce)
 *   kernel -> client  WELCOME  magic "BTW1" | kernel nonce (32) | HMAC-SHA256(key, "welcome" | client nonce | kernel nonce)
 *
 * The session secret is HKDF-SHA256(key, salt = client nonce | kernel nonce), and envelope keys
 * derive from it as for services. Because both nonces are fresh, every connection gets its own
 * keys, so sequence numbers (the AEAD nonces) can restart at 0 without ever repeating a
 * (key, nonce) pair. The kernel also refuses a HELLO whose client nonce it has already seen.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { CHANNEL_SECRET_SIZE } from './keys';

export const HANDSHAKE_NONCE_SIZE = 32;
const MAC_SIZE = 32;
const MAGIC_SIZE = 4;
export const HANDSHAKE_FRAME_SIZE = MAGIC_SIZE + HANDSHAKE_NONCE_SIZE + MAC_SIZE;
const HELLO_MAGIC = new TextEncoder().encode('BTH1');
const WELCOME_MAGIC = new TextEncoder().encode('BTW1');
const encoder = new TextEncoder();

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function frame(magic: Uint8Array, nonce: Uint8Array, mac: Uint8Array): Uint8Array {
  return concat(magic, nonce, mac);
}

function hasMagic(bytes: Uint8Array, magic: Uint8Array): boolean {
  return bytes.length === HANDSHAKE_FRAME_SIZE && magic.every((byte, index) => bytes[index] === byte);
}

export function isHelloFrame(bytes: Uint8Array): boolean {
  return hasMagic(bytes, HELLO_MAGIC);
}

export function createHello(controlKey: Uint8Array): { frame: Uint8Array; clientNonce: Uint8Array } {
  const clientNonce = new Uint8Array(randomBytes(HANDSHAKE_NONCE_SIZE));
  const mac = hmac(sha256, controlKey, concat(encoder.encode('hello'), clientNonce));
  return { frame: frame(HELLO_MAGIC, clientNonce, mac), clientNonce };
}

/** Returns the client nonce of a HELLO whose MAC verifies under `controlKey`, or undefined. */
export function verifyHello(controlKey: Uint8Array, hello: Uint8Array): Uint8Array | undefined {
  if (!isHelloFrame(hello)) return undefined;
  const clientNonce = hello.slice(MAGIC_SIZE, MAGIC_SIZE + HANDSHAKE_NONCE_SIZE);
  const expected = hmac(sha256, controlKey, concat(encoder.encode('hello'), clientNonce));
  return timingSafeEqual(expected, hello.subarray(MAGIC_SIZE + HANDSHAKE_NONCE_SIZE)) ? clientNonce : undefined;
}

export function createWelcome(controlKey: Uint8Array, clientNonce: Uint8Array): { frame: Uint8Array; kernelNonce: Uint8Array } {
  const kernelNonce = new Uint8Array(randomBytes(HANDSHAKE_NONCE_SIZE));
  const mac = hmac(sha256, controlKey, concat(encoder.encode('welcome'), clientNonce, kernelNonce));
  return { frame: frame(WELCOME_MAGIC, kernelNonce, mac), kernelNonce };
}

/** Returns the kernel nonce of a WELCOME that replies to our HELLO, or undefined. */
export function verifyWelcome(controlKey: Uint8Array, clientNonce: Uint8Array, welcome: Uint8Array): Uint8Array | undefined {
  if (!hasMagic(welcome, WELCOME_MAGIC)) return undefined;
  const kernelNonce = welcome.slice(MAGIC_SIZE, MAGIC_SIZE + HANDSHAKE_NONCE_SIZE);
  const expected = hmac(sha256, controlKey, concat(encoder.encode('welcome'), clientNonce, kernelNonce));
  return timingSafeEqual(expected, welcome.subarray(MAGIC_SIZE + HANDSHAKE_NONCE_SIZE)) ? kernelNonce : undefined;
}

export function deriveSessionSecret(controlKey: Uint8Array, clientNonce: Uint8Array, kernelNonce: Uint8Array): Uint8Array {
  return hkdf(sha256, controlKey, concat(clientNonce, kernelNonce), encoder.encode('backtestr control session v1'), CHANNEL_SECRET_SIZE);
}
