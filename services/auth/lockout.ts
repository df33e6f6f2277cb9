/**
 * Lockout policy: after MAX_FAILED_UNLOCKS consecutive wrong passwords the profile is locked for
 * LOCKOUT_DURATION_MS, and every attempt during the lock is rejected before the password is
 * looked at. These functions are pure; the service persists their results.
 */
import type { LockoutRecord } from './state-files';
import { EMPTY_LOCKOUT } from './state-files';

export const MAX_FAILED_UNLOCKS = 5;
export const LOCKOUT_DURATION_MS = 15 * 60 * 1000;

export type LockoutDecision =
  | { kind: 'locked'; retryAfterMs: number; record: LockoutRecord }
  | { kind: 'open'; record: LockoutRecord };

/**
 * Decides whether an attempt at `now` may proceed, and returns the record to persist before it
 * does. An expired lock resets the counter. A counter at the maximum without a lock end (left by a
 * crash between the two writes of a failed attempt) starts the lock now, failing closed.
 */
export function checkLockout(record: LockoutRecord, now: number): LockoutDecision {
  if (record.lockedUntil !== null) {
    if (now < record.lockedUntil) {
      // NOTE: a wall clock moved backwards would stretch the lock, so the wait is capped at one
      // full lock. A clock moved forwards ends it early: the local user owns the clock.
      const retryAfterMs = Math.min(record.lockedUntil - now, LOCKOUT_DURATION_MS);
      return { kind: 'locked', retryAfterMs, record };
    }
    return { kind: 'open', record: EMPTY_LOCKOUT };
  }

  if (record.failures >= MAX_FAILED_UNLOCKS) {
    const locked: LockoutRecord = { version: 1, failures: record.failures, lockedUntil: now + LOCKOUT_DURATION_MS };
    return { kind: 'locked', retryAfterMs: LOCKOUT_DURATION_MS, record: locked };
  }

  return { kind: 'open', record };
}

/**
 * Returns the record to persist once a counted attempt turned out wrong. The attempt was counted
 * in `record` before the password was checked, so this only starts the lock when that count
 * reached the maximum and no lock runs yet.
 */
export function lockIfExhausted(record: LockoutRecord, now: number): LockoutRecord {
  if (record.failures < MAX_FAILED_UNLOCKS || record.lockedUntil !== null) return record;
  return { version: 1, failures: record.failures, lockedUntil: now + LOCKOUT_DURATION_MS };
}
