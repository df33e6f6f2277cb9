/**
 * Redaction of event details before they reach the security log. Redaction happens here, on the
 * way in, because pino's own `redact` option matches only the paths listed in advance, so a
 * secret under an unexpected key would pass. Two heuristics run on every detail: the key name and the value shape.
 * Both err towards redacting too much.
 */
import { BacktestrError } from '../../protocol/errors';
import type { ErrorDetails } from '../../protocol/errors';

export const REDACTED = '[redacted]';
export const MAX_DETAIL_STRING_LENGTH = 256;
export const MAX_DETAIL_KEYS = 32;
/** Detail keys: a letter, then letters, digits, `_`, `.` or `-`, 64 characters at most. */
export const DETAIL_KEY_PATTERN = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

/** Fragments that mark a key as secret wherever they appear, after lower-casing and removing `_`, `-` and `.`. */
const SECRET_KEY_FRAGMENTS = [
  'password',
  'passwd',
  'passphrase',
  'pwd',
  'secret',
  'token',
  'session',
  'cookie',
  'credential',
  'auth',
  'bearer',
  'key',
  'salt',
  'nonce',
  'seed',
  'mnemonic',
  'signature',
  'private',
];

/** Keys that are secret only as a whole word, because as fragments they would match ordinary words ("mapping"). */
const SECRET_KEYS_EXACT = new Set(['pin', 'otp', 'iv', 'mac']);

/**
 * Opaque strings of 32 or more base64, base64url or hex characters that mix letters and digits.
 * Tokens, keys and hashes look like this; ordinary messages and file names (with dots or spaces) do not.
 */
const OPAQUE_TOKEN = /^(?=[^]*\d)(?=[^]*[A-Za-z])[A-Za-z0-9_\-+/=]{32,}$/;

export function isSecretKey(key: string): boolean {
  const normalized = key.toLowerCase().replace(/[_.-]/g, '');
  if (SECRET_KEYS_EXACT.has(normalized)) return true;
  return SECRET_KEY_FRAGMENTS.some((fragment) => normalized.includes(fragment));
}

function looksLikeSecretValue(value: string): boolean {
  return OPAQUE_TOKEN.test(value) || value.includes('$argon2');
}

export interface RedactionResult {
  details: ErrorDetails;
  redactedKeys: number;
  truncatedValues: number;
}

/**
 * Returns a copy of `details` that is safe to log: secret-looking keys and values replaced with
 * REDACTED, strings cut to MAX_DETAIL_STRING_LENGTH. Throws E_INVALID_PARAMS for a value that is
 * not a string, a finite number or a boolean, naming the key but not the value.
 */
export function redactDetails(details: Record<string, unknown>): RedactionResult {
  const out: ErrorDetails = {};
  let redactedKeys = 0;
  let truncatedValues = 0;

  for (const [key, value] of Object.entries(details)) {
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) throw invalidDetail(key, 'a finite number');
    } else if (typeof value !== 'string' && typeof value !== 'boolean') {
      throw invalidDetail(key, 'a string, a finite number or a boolean');
    }

    if (isSecretKey(key) || (typeof value === 'string' && looksLikeSecretValue(value))) {
      out[key] = REDACTED;
      redactedKeys++;
      continue;
    }

    if (typeof value === 'string' && value.length > MAX_DETAIL_STRING_LENGTH) {
      out[key] = `${value.slice(0, MAX_DETAIL_STRING_LENGTH)}[truncated]`;
      truncatedValues++;
      continue;
    }

    out[key] = value;
  }

  return { details: out, redactedKeys, truncatedValues };
}

function invalidDetail(key: string, expected: string): BacktestrError {
  const path = `params.details.${key}`;
  return new BacktestrError('E_INVALID_PARAMS', `invalid value at ${path}: expected ${expected}`, { path });
}
