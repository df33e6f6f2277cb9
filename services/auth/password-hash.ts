/**
 * Argon2id password hashing (RFC 9106) through @node-rs/argon2. The stored form is the PHC string
 * (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`), which carries its own parameters and salt, so
 * old profiles stay verifiable after the parameters below are raised.
 */
import { Algorithm, hash, verify } from '@node-rs/argon2';

/**
 * Parameters of OWASP's first Argon2id recommendation (19 MiB, 2 passes, 1 lane). About 10 ms on
 * a 2-core x86-64 machine with Node 24; raise them, never lower them.
 */
export const ARGON2_MEMORY_KIB = 19456;
export const ARGON2_TIME_COST = 2;
export const ARGON2_PARALLELISM = 1;

const HASH_OPTIONS = {
  algorithm: Algorithm.Argon2id,
  memoryCost: ARGON2_MEMORY_KIB,
  timeCost: ARGON2_TIME_COST,
  parallelism: ARGON2_PARALLELISM,
};

/**
 * Encodes a password as NFC-normalised UTF-8 bytes, so that the same password typed with
 * precomposed or decomposed accents unlocks the profile. The caller wipes the returned buffer.
 */
export function encodePassword(password: string): Buffer {
  return Buffer.from(password.normalize('NFC'), 'utf8');
}

/** Hashes the password bytes with a fresh random salt and returns the PHC string. */
export async function hashPassword(passwordBytes: Uint8Array): Promise<string> {
  return hash(passwordBytes, HASH_OPTIONS);
}

/**
 * Returns whether the password bytes match the PHC string.
 * NOTE: the hash comparison happens inside the native library, and this code does not check that
 * it runs in constant time. The Argon2 cost dominates the timing in either case.
 */
export async function verifyPassword(phc: string, passwordBytes: Uint8Array): Promise<boolean> {
  return verify(phc, passwordBytes);
}

/** Checks the shape of a stored PHC string before it is handed to the native verifier. */
export function isArgon2idPhc(value: unknown): value is string {
  return typeof value === 'string' && value.length < 512 && /^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/.test(value);
}
