/**
 * A small declarative schema for envelope bodies and method parameters.
 *
 * `parse` both checks and converts: it returns a fresh value built only from what the schema
 * names, so unexpected fields are rejected, never passed through, and nothing of the input's
 * prototype chain survives. Byte arrays of Float64 values arrive from msgpackr as bytes and
 * leave `parse` as Float64Array copies.
 */
import { BacktestrError } from './errors';

export type Schema =
  | { kind: 'string'; maxLength: number; pattern?: RegExp }
  | { kind: 'number'; min?: number; max?: number; integer?: boolean }
  | { kind: 'boolean' }
  | { kind: 'bytes'; maxLength: number }
  | { kind: 'f64array'; maxLength: number }
  | { kind: 'array'; of: Schema; maxLength: number }
  | { kind: 'object'; fields: Record<string, Schema>; optional?: readonly string[] }
  | { kind: 'record'; of: Schema; maxKeys: number; keyPattern?: RegExp }
  | { kind: 'nullable'; of: Schema }
  | { kind: 'literal'; values: readonly (string | number)[] }
  /** Any value the strict codec produced; the method that finally receives it checks its shape. */
  | { kind: 'opaque' };

/** Constructors that read like the wire format they describe. */
export const s = {
  string: (maxLength: number, pattern?: RegExp): Schema => ({ kind: 'string', maxLength, pattern }),
  number: (options: { min?: number; max?: number; integer?: boolean } = {}): Schema => ({ kind: 'number', ...options }),
  integer: (min: number, max: number): Schema => ({ kind: 'number', min, max, integer: true }),
  boolean: (): Schema => ({ kind: 'boolean' }),
  bytes: (maxLength: number): Schema => ({ kind: 'bytes', maxLength }),
  f64array: (maxLength: number): Schema => ({ kind: 'f64array', maxLength }),
  array: (of: Schema, maxLength: number): Schema => ({ kind: 'array', of, maxLength }),
  object: (fields: Record<string, Schema>, optional: readonly string[] = []): Schema => ({ kind: 'object', fields, optional }),
  record: (of: Schema, maxKeys: number, keyPattern?: RegExp): Schema => ({ kind: 'record', of, maxKeys, keyPattern }),
  nullable: (of: Schema): Schema => ({ kind: 'nullable', of }),
  literal: (...values: (string | number)[]): Schema => ({ kind: 'literal', values }),
  opaque: (): Schema => ({ kind: 'opaque' }),
};

/** Keys that could reach an object's prototype if a later consumer assigned them. */
const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

const MAX_DEPTH = 32;

/**
 * Checks `value` against `schema` and returns a fresh copy. Throws E_INVALID_PARAMS naming the
 * path of the first offending value (for example `params.bars.close`).
 */
export function parse<T = unknown>(schema: Schema, value: unknown, path = 'body'): T {
  return parseAt(schema, value, path, 0) as T;
}

function fail(path: string, expected: string): never {
  throw new BacktestrError('E_INVALID_PARAMS', `invalid value at ${path}: expected ${expected}`, { path });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function parseAt(schema: Schema, value: unknown, path: string, depth: number): unknown {
  if (depth > MAX_DEPTH) fail(path, `nesting of at most ${MAX_DEPTH} levels`);

  switch (schema.kind) {
    case 'string': {
      if (typeof value !== 'string') fail(path, 'a string');
      if (value.length > schema.maxLength) fail(path, `a string of at most ${schema.maxLength} characters`);
      if (schema.pattern && !schema.pattern.test(value)) fail(path, `a string matching ${schema.pattern}`);
      return value;
    }
    case 'number': {
      if (typeof value !== 'number' || !Number.isFinite(value)) fail(path, 'a finite number');
      if (schema.integer && !Number.isInteger(value)) fail(path, 'an integer');
      if (schema.min !== undefined && value < schema.min) fail(path, `a number >= ${schema.min}`);
      if (schema.max !== undefined && value > schema.max) fail(path, `a number <= ${schema.max}`);
      return value;
    }
    case 'boolean': {
      if (typeof value !== 'boolean') fail(path, 'a boolean');
      return value;
    }
    case 'bytes': {
      if (!(value instanceof Uint8Array)) fail(path, 'bytes');
      if (value.length > schema.maxLength) fail(path, `at most ${schema.maxLength} bytes`);
      return Uint8Array.prototype.slice.call(value);
    }
    case 'f64array': {
      return parseFloat64Array(schema.maxLength, value, path);
    }
    case 'array': {
      if (!Array.isArray(value)) fail(path, 'an array');
      if (value.length > schema.maxLength) fail(path, `an array of at most ${schema.maxLength} items`);
      const out = new Array<unknown>(value.length);
      for (let i = 0; i < value.length; i++) out[i] = parseAt(schema.of, value[i], `${path}[${i}]`, depth + 1);
      return out;
    }
    case 'object': {
      if (!isPlainObject(value)) fail(path, 'an object');
      const optional = new Set(schema.optional ?? []);
      for (const key of Object.keys(value)) {
        if (FORBIDDEN_KEYS.has(key)) fail(`${path}.${key}`, 'no prototype key');
        if (!Object.hasOwn(schema.fields, key)) fail(`${path}.${key}`, 'no such field');
      }
      const out: Record<string, unknown> = {};
      for (const [key, fieldSchema] of Object.entries(schema.fields)) {
        if (!Object.hasOwn(value, key) || value[key] === undefined) {
          if (optional.has(key)) continue;
          fail(`${path}.${key}`, 'a value (field is required)');
        }
        out[key] = parseAt(fieldSchema, value[key], `${path}.${key}`, depth + 1);
      }
      return out;
    }
    case 'record': {
      if (!isPlainObject(value)) fail(path, 'an object');
      const keys = Object.keys(value);
      if (keys.length > schema.maxKeys) fail(path, `at most ${schema.maxKeys} keys`);
      const out: Record<string, unknown> = Object.create(null);
      for (const key of keys) {
        if (FORBIDDEN_KEYS.has(key)) fail(`${path}.${key}`, 'no prototype key');
        if (schema.keyPattern && !schema.keyPattern.test(key)) fail(`${path}.${key}`, `a key matching ${schema.keyPattern}`);
        out[key] = parseAt(schema.of, value[key], `${path}.${key}`, depth + 1);
      }
      return out;
    }
    case 'nullable': {
      if (value === null || value === undefined) return null;
      return parseAt(schema.of, value, path, depth + 1);
    }
    case 'literal': {
      if (!schema.values.includes(value as string | number)) fail(path, `one of ${schema.values.join(', ')}`);
      return value;
    }
    case 'opaque': {
      return value;
    }
  }
}

function parseFloat64Array(maxLength: number, value: unknown, path: string): Float64Array {
  if (value instanceof Float64Array) {
    if (value.length > maxLength) fail(path, `at most ${maxLength} numbers`);
    return value.slice();
  }
  if (!(value instanceof Uint8Array)) fail(path, 'a Float64Array');
  if (value.byteLength % Float64Array.BYTES_PER_ELEMENT !== 0) fail(path, 'a whole number of float64 values');
  const length = value.byteLength / Float64Array.BYTES_PER_ELEMENT;
  if (length > maxLength) fail(path, `at most ${maxLength} numbers`);
  // Copy into a fresh, aligned buffer: the received bytes may sit at any offset of a larger frame.
  const out = new Float64Array(length);
  new Uint8Array(out.buffer).set(value);
  return out;
}
