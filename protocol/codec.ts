/**
 * Body encoding with msgpackr in a strict configuration.
 *
 * Decoding produces Maps (mapsAsObjects: false) so that this module, not the decoder, builds
 * every object: keys must be strings, `__proto__`, `constructor` and `prototype` are rejected,
 * and objects get a null prototype. No extension is registered, records and structured clone are
 * off, and anything that is not plain data (a Date from the timestamp extension, a record, a Set)
 * is rejected.
 */
import { Packr, Unpackr } from 'msgpackr';
import { BacktestrError } from './errors';

const packr = new Packr({ useRecords: false, structuredClone: false, moreTypes: false, bundleStrings: false });
const unpackr = new Unpackr({ useRecords: false, structuredClone: false, moreTypes: false, mapsAsObjects: false, bundleStrings: false });

const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);
/** Maximum nesting of arrays and maps in a body. */
export const MAX_BODY_DEPTH = 32;

export type PlainValue = null | boolean | number | string | Uint8Array | PlainValue[] | { [key: string]: PlainValue };

export function encodeBody(value: unknown): Uint8Array {
  return packr.pack(typedArraysAsBytes(value, 0));
}

/**
 * Replaces every typed array with a byte view of the same memory, so that each one travels as
 * msgpack bin data, byte for byte, and arrives as a Uint8Array. msgpackr's own typed-array
 * handling depends on the value's realm (inside jest a Float64Array was packed as a map of
 * indices), and its 1.x releases packed Float64Array wrongly.
 */
function typedArraysAsBytes(value: unknown, depth: number): unknown {
  if (depth > MAX_BODY_DEPTH || value === null || typeof value !== 'object') return value;
  if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (Array.isArray(value)) {
    // Arrays of numbers and strings are the common large case; leave them untouched.
    if (!value.some((item) => item !== null && typeof item === 'object')) return value;
    return value.map((item) => typedArraysAsBytes(item, depth + 1));
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    // defineProperty keeps an own "__proto__" key as data, where assignment would set the prototype.
    Object.defineProperty(out, key, { value: typedArraysAsBytes(item, depth + 1), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

export function decodeBody(bytes: Uint8Array): PlainValue {
  let decoded: unknown;
  try {
    decoded = unpackr.unpack(bytes);
  } catch (error) {
    throw new BacktestrError('E_ENVELOPE_REJECTED', 'body is not valid msgpack', { reason: 'decode' }, { cause: error });
  }
  return toPlain(decoded, 0);
}

function reject(reason: string): never {
  throw new BacktestrError('E_ENVELOPE_REJECTED', `body rejected: ${reason}`, { reason: 'decode' });
}

function toPlain(value: unknown, depth: number): PlainValue {
  if (depth > MAX_BODY_DEPTH) reject(`nesting deeper than ${MAX_BODY_DEPTH}`);
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'boolean':
    case 'string':
      return value;
    case 'number':
      if (!Number.isFinite(value)) reject('non-finite number');
      return value;
    case 'bigint':
      reject('64-bit integer outside the safe range');
  }
  // msgpackr returns binary data as views into the plaintext, which the envelope layer wipes
  // after decoding, so each byte string is copied out first.
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    return new Uint8Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
  }
  if (Array.isArray(value)) return value.map((item) => toPlain(item, depth + 1));
  if (value instanceof Map) {
    const out: { [key: string]: PlainValue } = Object.create(null);
    for (const [key, item] of value) {
      if (typeof key !== 'string') reject('map key is not a string');
      if (FORBIDDEN_KEYS.has(key)) reject(`forbidden key ${key}`);
      out[key] = toPlain(item, depth + 1);
    }
    return out;
  }
  reject(`unsupported type ${Object.prototype.toString.call(value)}`);
}
