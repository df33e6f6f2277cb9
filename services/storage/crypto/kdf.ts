/**
 * Password to key-encryption key (KEK): the NFC-normalised password through Argon2id (RFC 9106)
 * with @node-rs/argon2's raw output. The parameters and salt live in the keyring file, so a
 * keyring created with higher costs on a faster machine still opens elsewhere, only slower.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Algorithm, Version, hashRaw } from '@node-rs/argon2';
import { BacktestrError } from '../../../protocol/errors';
import { wipe } from './bytes';

export const KEK_SIZE = 32;
export const SALT_SIZE = 16;

export interface Argon2Params {
  /** Memory cost in KiB (`m` in RFC 9106). */
  memoryKiB: number;
  /** Number of passes (`t`). */
  timeCost: number;
  /** Number of lanes (`p`). */
  parallelism: number;
}

/** OWASP's first Argon2id recommendation (19 MiB, 2 passes, 1 lane): the floor for real keyrings. */
export const MIN_ARGON2_PARAMS: Readonly<Argon2Params> = Object.freeze({ memoryKiB: 19456, timeCost: 2, parallelism: 1 });

/**
 * Upper bounds checked before a stored keyring's parameters reach Argon2, so that an edited file
 * cannot make unlocking allocate gigabytes or run for hours.
 */
export const MAX_ARGON2_PARAMS: Readonly<Argon2Params> = Object.freeze({ memoryKiB: 2 * 1024 * 1024, timeCost: 64, parallelism: 16 });

/** RFC 9106 section 3.1: memory must be at least 8 KiB per lane. The smallest cost tests may use. */
const ARGON2_FLOOR_KIB_PER_LANE = 8;

export interface KdfPolicy {
  /**
   * Accepts parameters below MIN_ARGON2_PARAMS. Only for tests that need many derivations; a
   * keyring created this way is as weak as its parameters.
   */
  allowWeakKdfForTests?: boolean;
}

/** Returns the reason the parameters are unacceptable, or null when they are acceptable. */
export function checkArgon2Params(params: Argon2Params, policy: KdfPolicy = {}): string | null {
  const { memoryKiB, timeCost, parallelism } = params;
  for (const [name, value] of Object.entries({ memoryKiB, timeCost, parallelism })) {
    if (!Number.isSafeInteger(value) || value < 1) return `${name} must be a positive integer, got ${value}`;
    const max = MAX_ARGON2_PARAMS[name as keyof Argon2Params];
    if (value > max) return `${name} is ${value}, maximum is ${max}`;
  }
  if (memoryKiB < ARGON2_FLOOR_KIB_PER_LANE * parallelism) {
    return `memoryKiB must be at least ${ARGON2_FLOOR_KIB_PER_LANE} per lane, got ${memoryKiB} for ${parallelism} lanes`;
  }
  if (!policy.allowWeakKdfForTests) {
    const min = MIN_ARGON2_PARAMS;
    if (memoryKiB < min.memoryKiB || timeCost < min.timeCost || parallelism < min.parallelism) {
      return `Argon2id parameters m=${memoryKiB} t=${timeCost} p=${parallelism} are below the minimum m=${min.memoryKiB} t=${min.timeCost} p=${min.parallelism}`;
    }
  }
  return null;
}

export function newSalt(): Uint8Array {
  return new Uint8Array(randomBytes(SALT_SIZE));
}

/**
 * Derives the 32-byte KEK. The caller owns the result and wipes it.
 * NOTE: the password string itself cannot be wiped (JS strings are immutable); only the UTF-8
 * copy made here is.
 */
export async function deriveKek(password: string, salt: Uint8Array, params: Argon2Params): Promise<Uint8Array> {
  if (typeof password !== 'string' || password.length === 0) {
    throw new BacktestrError('E_INVALID_PARAMS', 'password must be a non-empty string');
  }
  const passwordBytes = Buffer.from(password.normalize('NFC'), 'utf8');
  try {
    const raw = await hashRaw(passwordBytes, {
      algorithm: Algorithm.Argon2id,
      version: Version.V0x13,
      memoryCost: params.memoryKiB,
      timeCost: params.timeCost,
      parallelism: params.parallelism,
      outputLen: KEK_SIZE,
      salt,
    });
    const kek = new Uint8Array(raw);
    wipe(raw);
    return kek;
  } finally {
    wipe(passwordBytes);
  }
}

export interface CalibrateOptions {
  /** Time one derivation should take on this machine, in milliseconds. Default 500. */
  targetMs?: number;
  /** Largest memory cost calibration may choose, in KiB. Default 256 MiB. */
  maxMemoryKiB?: number;
  /** Largest time cost calibration may choose. Default 16. */
  maxTimeCost?: number;
}

export interface CalibrationResult {
  params: Argon2Params;
  /** Duration of one derivation at `params`, measured during calibration, in milliseconds. */
  measuredMs: number;
}

const DEFAULT_TARGET_MS = 500;
const DEFAULT_MAX_MEMORY_KIB = 256 * 1024;
const DEFAULT_MAX_TIME_COST = 16;
const MEMORY_STEP_KIB = 1024;

/**
 * Raises Argon2id costs from MIN_ARGON2_PARAMS until one derivation takes about `targetMs` here.
 * Memory is raised first (it is what makes guessing expensive on GPUs), up to `maxMemoryKiB` so
 * a desktop is not pushed into swap, then passes. Argon2's time is close to linear in
 * memory * passes, so each step scales by the measured shortfall; the loop stops after five
 * measurements. The result never goes below the minimum, even on a slow machine.
 *
 * Each measurement is the faster of two runs, because the first run at a new memory size also
 * pays for the kernel mapping fresh pages. On a 2-core AMD EPYC VM that was 575 ms cold against
 * 250 ms warm at 256 MiB, which would stop calibration at half the target.
 */
export async function calibrateArgon2(options: CalibrateOptions = {}): Promise<CalibrationResult> {
  const targetMs = options.targetMs ?? DEFAULT_TARGET_MS;
  const maxMemoryKiB = Math.min(options.maxMemoryKiB ?? DEFAULT_MAX_MEMORY_KIB, MAX_ARGON2_PARAMS.memoryKiB);
  const maxTimeCost = Math.min(options.maxTimeCost ?? DEFAULT_MAX_TIME_COST, MAX_ARGON2_PARAMS.timeCost);
  if (!(targetMs > 0) || maxMemoryKiB < MIN_ARGON2_PARAMS.memoryKiB || maxTimeCost < MIN_ARGON2_PARAMS.timeCost) {
    throw new BacktestrError('E_INVALID_PARAMS', 'calibration bounds must be positive and not below the minimum parameters');
  }

  let params: Argon2Params = { ...MIN_ARGON2_PARAMS };
  let measuredMs = await timeWarmDerivation(params);

  for (let round = 0; round < 4 && measuredMs < targetMs * 0.9; round++) {
    const scale = targetMs / measuredMs;
    const next = { ...params };
    if (params.memoryKiB < maxMemoryKiB) {
      const wanted = Math.floor((params.memoryKiB * scale) / MEMORY_STEP_KIB) * MEMORY_STEP_KIB;
      next.memoryKiB = Math.max(params.memoryKiB, Math.min(maxMemoryKiB, wanted));
    } else {
      // At least one more pass: rounding a small shortfall down would stop short of the target.
      next.timeCost = Math.min(maxTimeCost, Math.max(params.timeCost + 1, Math.round(params.timeCost * scale)));
    }
    if (next.memoryKiB === params.memoryKiB && next.timeCost === params.timeCost) break;
    params = next;
    measuredMs = await timeWarmDerivation(params);
  }
  return { params, measuredMs };
}

async function timeWarmDerivation(params: Argon2Params): Promise<number> {
  return Math.min(await timeDerivation(params), await timeDerivation(params));
}

/** Runs one derivation with a throwaway password and salt and returns its wall time in ms. */
export async function timeDerivation(params: Argon2Params): Promise<number> {
  const started = performance.now();
  const kek = await deriveKek('calibration', newSalt(), params);
  const elapsed = performance.now() - started;
  wipe(kek);
  return elapsed;
}
