/**
 * The control handshake between an external client (desktop shell, CLI, auditor) and the kernel.
 *
 * The kernel writes a fresh 32-byte control key to a 0600 file in its 0700 runtime directory at
 * start, so only the same user can read it. The handshake runs on the kernel's control socket, a
 * nanomsg reply socket that serves any number of clients one request at a time:
 *
 *   client -> kernel  HELLO    "BTH1" | client nonce (32) | HMAC-SHA256(key, "hello" | client nonce)
 *   kernel -> client  WELCOME  "BTW1" | kernel nonce (32) | endpoint id (16)
 *                              | HMAC-SHA256(key, "welcome" | client nonce | kernel nonce | endpoint id)
 *
 * The endpoint id names the client's private pair socket, `client-<hex id>.ipc` in the runtime
 * directory, where the envelopes of this connection travel. The session secret is
 * HKDF-SHA256(key, salt = client nonce | kernel nonce), and envelope keys derive from it as for
 * services. Both nonces are fresh, so every connection gets its own keys and its sequence
 * numbers (the AEAD nonces) can start at 0 without ever repeating a (key, nonce) pair. The kernel
 * also rejects a HELLO whose client nonce it has already seen.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { CHANNEL_SECRET_SIZE } from './keys';

export const HANDSHAKE_NONCE_SIZE = 32;
export const ENDPOINT_ID_SIZE = 16;
const MAC_SIZE = 32;
const MAGIC_SIZE = 4;
export const HELLO_FRAME_SIZE = MAGIC_SIZE + HANDSHAKE_NONCE_SIZE + MAC_SIZE;
export const WELCOME_FRAME_SIZE = MAGIC_SIZE + HANDSHAKE_NONCE_SIZE + ENDPOINT_ID_SIZE + MAC_SIZE;
const encoder = new TextEncoder();
const HELLO_MAGIC = encoder.encode('BTH1');
const WELCOME_MAGIC = encoder.encode('BTW1');

export interface Welcome {
  kernelNonce: Uint8Array;
  /** Name of the client's private endpoint, without the `.ipc` suffix. */
  endpointName: string;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function hasMagic(bytes: Uint8Array, magic: Uint8Array, size: number): boolean {
  return bytes.length === size && magic.every((byte, index) => bytes[index] === byte);
}

function macMatches(expected: Uint8Array, received: Uint8Array): boolean {
  return expected.length === received.length && timingSafeEqual(expected, received);
}

export function endpointNameFor(endpointId: Uint8Array): string {
  return `client-${Buffer.from(endpointId).toString('hex')}`;
}

export function createHello(controlKey: Uint8Array): { frame: Uint8Array; clientNonce: Uint8Array } {
  const clientNonce = new Uint8Array(randomBytes(HANDSHAKE_NONCE_SIZE));
  const mac = hmac(sha256, controlKey, concat(encoder.encode('hello'), clientNonce));
  return { frame: concat(HELLO_MAGIC, clientNonce, mac), clientNonce };
}

/** Returns the client nonce of a HELLO whose MAC verifies under `controlKey`, or undefined. */
export function verifyHello(controlKey: Uint8Array, hello: Uint8Array): Uint8Array | undefined {
  if (!hasMagic(hello, HELLO_MAGIC, HELLO_FRAME_SIZE)) return undefined;
  const clientNonce = hello.slice(MAGIC_SIZE, MAGIC_SIZE + HANDSHAKE_NONCE_SIZE);
  const expected = hmac(sha256, controlKey, concat(encoder.encode('hello'), clientNonce));
  return macMatches(expected, hello.subarray(MAGIC_SIZE + HANDSHAKE_NONCE_SIZE)) ? clientNonce : undefined;
}

export function createWelcome(controlKey: Uint8Array, clientNonce: Uint8Array): { frame: Uint8Array } & Welcome {
  const kernelNonce = new Uint8Array(randomBytes(HANDSHAKE_NONCE_SIZE));
  const endpointId = new Uint8Array(randomBytes(ENDPOINT_ID_SIZE));
  const mac = hmac(sha256, controlKey, concat(encoder.encode('welcome'), clientNonce, kernelNonce, endpointId));
  return { frame: concat(WELCOME_MAGIC, kernelNonce, endpointId, mac), kernelNonce, endpointName: endpointNameFor(endpointId) };
}

/** Returns the kernel nonce and endpoint of a WELCOME that replies to our HELLO, or undefined. */
export function verifyWelcome(controlKey: Uint8Array, clientNonce: Uint8Array, welcome: Uint8Array): Welcome | undefined {
  if (!hasMagic(welcome, WELCOME_MAGIC, WELCOME_FRAME_SIZE)) return undefined;
  const kernelNonce = welcome.slice(MAGIC_SIZE, MAGIC_SIZE + HANDSHAKE_NONCE_SIZE);
  const endpointId = welcome.slice(MAGIC_SIZE + HANDSHAKE_NONCE_SIZE, MAGIC_SIZE + HANDSHAKE_NONCE_SIZE + ENDPOINT_ID_SIZE);
  const expected = hmac(sha256, controlKey, concat(encoder.encode('welcome'), clientNonce, kernelNonce, endpointId));
  if (!macMatches(expected, welcome.subarray(MAGIC_SIZE + HANDSHAKE_NONCE_SIZE + ENDPOINT_ID_SIZE))) return undefined;
  return { kernelNonce, endpointName: endpointNameFor(endpointId) };
}

export function deriveSessionSecret(controlKey: Uint8Array, clientNonce: Uint8Array, kernelNonce: Uint8Array): Uint8Array {
  return hkdf(sha256, controlKey, concat(clientNonce, kernelNonce), encoder.encode('backtestr control session v1'), CHANNEL_SECRET_SIZE);
}
