/**
 * AUTH: the one local profile of a profile directory, its lockout state and its sessions. Auth
 * never receives a password: the storage service's keyring is the one password verifier, and the
 * kernel runs each password check as begin (here), verify (storage), finish (here).
 *
 * Methods (the runtime checks params against each schema first; only the kernel calls the first four):
 *   recordProfile {}                  -> {recorded: true}                 E_PROFILE_EXISTS
 *   beginUnlock {}                    -> {attempt}                        E_PROFILE_MISSING, E_LOCKED_OUT
 *   finishUnlock {attempt, outcome}   -> {session, expiresAt} | {reset: true} | {counted: true}
 *                                                                        E_WRONG_PASSWORD, E_SESSION_INVALID
 *   endAllSessions {}                 -> {ended}
 *   validateSession {session}         -> {valid, expiresAt (null if not valid)}
 *   lock {session}                    -> {locked: true}                   E_SESSION_INVALID
 *   status {}                         -> {profileExists, lockedOut, retryAfterMs}
 *
 * `outcome` of finishUnlock is one of five values. 'unlocked' means the password was right, so
 * the counter resets and a session is issued. 'verified' is the same for a password change,
 * without a session. 'wrong-password' records the failure and may start the lock. 'aborted'
 * means the check itself failed (storage crashed, for example), and the attempt stays counted.
 * 'not-checked' means no guess was made or the guess was right but something else failed
 * (storage was not running, or a profile file failed verification), so this attempt's count is
 * taken back without resetting the others.
 */
import { randomBytes } from 'node:crypto';
import { BacktestrError } from '../../protocol/errors';
import { s } from '../../protocol/schema';
import type { MethodHandler, ServiceContext, ServiceDefinition } from '../runtime/types';
import { ensurePrivateDir } from '../runtime/atomic-file';
import { checkLockout, lockIfExhausted, MAX_FAILED_UNLOCKS } from './lockout';
import { SerialQueue } from '../runtime/serial-queue';
import { DEFAULT_SESSION_LIFETIME_MS, SESSION_TOKEN_PATTERN, SessionStore } from './sessions';
import { AuthStateFiles, EMPTY_LOCKOUT } from './state-files';

export interface AuthServiceOptions {
  /** Clock in epoch milliseconds, used for lockouts and session expiry. Tests inject one. */
  now?: () => number;
  /** Fixed session lifetime in milliseconds; default 8 hours. */
  sessionLifetimeMs?: number;
}

interface SessionParams {
  session: string;
}

export const UNLOCK_OUTCOMES = ['unlocked', 'verified', 'wrong-password', 'aborted', 'not-checked'] as const;
export type UnlockOutcome = (typeof UNLOCK_OUTCOMES)[number];

interface FinishParams {
  attempt: string;
  outcome: UnlockOutcome;
}

/** Attempt ids: 16 random bytes, base64url. */
const ATTEMPT_PATTERN = /^[A-Za-z0-9_-]{22}$/;
/**
 * Unfinished attempts remembered at once. Forgetting one is safe: it stays counted as failed,
 * and its finish call fails with E_SESSION_INVALID.
 */
const MAX_PENDING_ATTEMPTS = 64;

const sessionSchema = s.object({ session: s.string(43, SESSION_TOKEN_PATTERN) });
const finishSchema = s.object({ attempt: s.string(22, ATTEMPT_PATTERN), outcome: s.literal(...UNLOCK_OUTCOMES) });

/** Builds an auth service with its own session table; each call is an independent instance. */
export function createAuthService(options: AuthServiceOptions = {}): ServiceDefinition {
  const now = options.now ?? Date.now;
  const lifetimeMs = options.sessionLifetimeMs ?? DEFAULT_SESSION_LIFETIME_MS;
  if (!Number.isSafeInteger(lifetimeMs) || lifetimeMs <= 0) {
    throw new RangeError(`sessionLifetimeMs must be a positive integer, received ${lifetimeMs}`);
  }

  const sessions = new SessionStore(lifetimeMs, now);
  const queue = new SerialQueue();
  /** Attempts counted by beginUnlock and not finished yet, in start order. */
  const pendingAttempts = new Set<string>();

  const recordProfile: MethodHandler<Record<string, never>, { recorded: true }> = {
    params: s.object({}),
    handle: (_params, ctx) => queue.run(async () => {
      const files = new AuthStateFiles(ctx.stateDir);
      await files.createProfile({ version: 2, createdAt: now() });
      // Rewriting keeps a counter that a repair finds (see kernel/profile-operations.ts) and
      // creates the file with mode 0600 when there is none.
      await files.writeLockout(await files.readLockout());

      ctx.log.info({ event: 'profile_created' }, 'auth profile recorded');
      ctx.securityEvent({ type: 'auth.profile_created', severity: 'info', details: {} });
      return { recorded: true };
    }),
  };

  const beginUnlock: MethodHandler<Record<string, never>, { attempt: string }> = {
    params: s.object({}),
    handle: (_params, ctx) => queue.run(async () => {
      const files = new AuthStateFiles(ctx.stateDir);
      const profile = await files.readProfile();
      if (profile === null) throw new BacktestrError('E_PROFILE_MISSING', 'no profile exists; create one first');

      // The lock is checked before the password is looked at, so a locked profile gives no oracle.
      const before = await files.readLockout();
      const decision = checkLockout(before, now());
      if (decision.kind === 'locked') {
        if (decision.record !== before) {
          await files.writeLockout(decision.record);
        }
        ctx.securityEvent({ type: 'auth.locked_attempt', severity: 'warning', details: { retryAfterMs: decision.retryAfterMs } });
        throw lockedOut(decision.retryAfterMs);
      }

      // Count the attempt as failed before storage verifies the password, so killing storage (or
      // this process) during the verification cannot buy an uncounted guess. 'unlocked' and
      // 'verified' reset the counter in finishUnlock.
      const current = decision.record;
      await files.writeLockout({ version: 1, failures: current.failures + 1, lockedUntil: null });

      const attempt = randomBytes(16).toString('base64url');
      pendingAttempts.add(attempt);
      if (pendingAttempts.size > MAX_PENDING_ATTEMPTS) pendingAttempts.delete(pendingAttempts.values().next().value as string);
      return { attempt };
    }),
  };

  const finishUnlock: MethodHandler<FinishParams, unknown> = {
    params: finishSchema,
    handle: (params, ctx) => queue.run(async () => {
      if (!pendingAttempts.delete(params.attempt)) {
        throw new BacktestrError('E_SESSION_INVALID', 'unknown or finished unlock attempt; it stays counted as failed');
      }
      const files = new AuthStateFiles(ctx.stateDir);

      switch (params.outcome) {
        case 'unlocked': {
          await files.writeLockout(EMPTY_LOCKOUT);
          const issued = sessions.issue();
          ctx.log.info({ event: 'unlock_ok', expiresAt: issued.expiresAt }, 'auth profile unlocked');
          ctx.securityEvent({ type: 'auth.unlock_ok', severity: 'info', details: { expiresAt: issued.expiresAt } });
          return issued;
        }
        case 'verified':
          await files.writeLockout(EMPTY_LOCKOUT);
          ctx.securityEvent({ type: 'auth.password_verified', severity: 'info', details: {} });
          return { reset: true };
        case 'not-checked': {
          const recorded = await files.readLockout();
          await files.writeLockout({ ...recorded, failures: Math.max(0, recorded.failures - 1) });
          ctx.log.info({ event: 'unlock_not_checked' }, 'unlock failed for a reason other than the password; the attempt is not counted');
          return { uncounted: true };
        }
        case 'aborted':
          ctx.log.warn({ event: 'unlock_aborted' }, 'password check did not finish; the attempt stays counted as failed');
          ctx.securityEvent({ type: 'auth.unlock_aborted', severity: 'warning', details: {} });
          return { counted: true };
        case 'wrong-password':
          break;
      }

      // The counter on disk already includes this attempt (and any running in parallel).
      const failed = lockIfExhausted(await files.readLockout(), now());
      await files.writeLockout(failed);
      const attemptsLeft = Math.max(0, MAX_FAILED_UNLOCKS - failed.failures);
      ctx.securityEvent({ type: 'auth.wrong_password', severity: 'warning', details: { attemptsLeft } });

      if (failed.lockedUntil !== null) {
        const retryAfterMs = Math.max(0, failed.lockedUntil - now());
        ctx.log.warn({ event: 'lockout_started', retryAfterMs }, 'auth profile locked after repeated wrong passwords');
        ctx.securityEvent({ type: 'auth.lockout_started', severity: 'critical', details: { retryAfterMs, failures: failed.failures } });
        throw new BacktestrError('E_WRONG_PASSWORD', 'wrong password; the profile is now locked', { attemptsLeft, retryAfterMs });
      }
      throw new BacktestrError('E_WRONG_PASSWORD', 'wrong password', { attemptsLeft });
    }),
  };

  const endAllSessions: MethodHandler<Record<string, never>, { ended: number }> = {
    params: s.object({}),
    handle: async (_params, ctx) => {
      const ended = sessions.endAll();
      ctx.log.info({ event: 'sessions_ended', ended }, 'auth sessions ended by the kernel');
      return { ended };
    },
  };

  const validateSession: MethodHandler<SessionParams, { valid: boolean; expiresAt: number | null }> = {
    params: sessionSchema,
    handle: async (params) => {
      const expiresAt = sessions.find(params.session);
      return { valid: expiresAt !== null, expiresAt };
    },
  };

  const lock: MethodHandler<SessionParams, { locked: true }> = {
    params: sessionSchema,
    handle: async (params, ctx) => {
      if (!sessions.end(params.session)) {
        throw new BacktestrError('E_SESSION_INVALID', 'session is not valid (unknown, expired or already locked)');
      }
      ctx.log.info({ event: 'session_locked' }, 'auth session locked');
      return { locked: true };
    },
  };

  const status: MethodHandler<Record<string, never>, { profileExists: boolean; lockedOut: boolean; retryAfterMs: number }> = {
    params: s.object({}),
    handle: (_params, ctx) => queue.run(async () => {
      const files = new AuthStateFiles(ctx.stateDir);
      const profileExists = (await files.readProfile()) !== null;
      const decision = checkLockout(await files.readLockout(), now());
      const lockedOut = decision.kind === 'locked';
      return { profileExists, lockedOut, retryAfterMs: lockedOut ? decision.retryAfterMs : 0 };
    }),
  };

  return {
    name: 'auth',
    methods: { recordProfile, beginUnlock, finishUnlock, endAllSessions, validateSession, lock, status },
    async start(ctx: ServiceContext) {
      await ensurePrivateDir(ctx.stateDir);
    },
    async stop(ctx: ServiceContext) {
      sessions.endAll();
      ctx.log.info({ event: 'stopped' }, 'auth sessions ended on stop');
    },
  };
}

function lockedOut(retryAfterMs: number): BacktestrError {
  return new BacktestrError('E_LOCKED_OUT', `too many wrong passwords; try again in ${Math.ceil(retryAfterMs / 1000)} s`, { retryAfterMs });
}

