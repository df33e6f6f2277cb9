/**
 * AUTH: the one local profile of a profile directory, its password and its sessions.
 *
 * Methods (the runtime checks params against each schema first):
 *   createProfile {password}  -> {created: true}                  E_PROFILE_EXISTS, E_WEAK_PASSWORD
 *   unlock {password}         -> {session, expiresAt}             E_PROFILE_MISSING, E_WRONG_PASSWORD, E_LOCKED_OUT
 *   validateSession {session} -> {valid, expiresAt (null if not valid)}
 *   lock {session}            -> {locked: true}                   E_SESSION_INVALID
 *   status {}                 -> {profileExists, lockedOut, retryAfterMs}
 *
 * Passwords never appear in logs, errors or security events. They arrive as JS strings, which
 * cannot be wiped; the code drops its references and wipes the UTF-8 copies it makes.
 */
import { BacktestrError } from '../../protocol/errors';
import { s } from '../../protocol/schema';
import type { MethodHandler, ServiceContext, ServiceDefinition } from '../runtime/types';
import { ensurePrivateDir } from './atomic-file';
import { checkLockout, MAX_FAILED_UNLOCKS, recordFailure } from './lockout';
import { findFailedPasswordRules, MAX_PASSWORD_LENGTH, MIN_PASSWORD_CODE_POINTS } from './password-policy';
import { encodePassword, hashPassword, verifyPassword } from './password-hash';
import { SerialQueue } from './serial-queue';
import { DEFAULT_SESSION_LIFETIME_MS, SESSION_TOKEN_PATTERN, SessionStore } from './sessions';
import { AuthStateFiles, EMPTY_LOCKOUT } from './state-files';

export interface AuthServiceOptions {
  /** Clock in epoch milliseconds, used for lockouts and session expiry. Tests inject one. */
  now?: () => number;
  /** Fixed session lifetime in milliseconds; default 8 hours. */
  sessionLifetimeMs?: number;
}

interface PasswordParams {
  password: string;
}

interface SessionParams {
  session: string;
}

const passwordSchema = s.object({ password: s.string(MAX_PASSWORD_LENGTH) });
const sessionSchema = s.object({ session: s.string(43, SESSION_TOKEN_PATTERN) });

/** Builds an auth service with its own session table; each call is an independent instance. */
export function createAuthService(options: AuthServiceOptions = {}): ServiceDefinition {
  const now = options.now ?? Date.now;
  const lifetimeMs = options.sessionLifetimeMs ?? DEFAULT_SESSION_LIFETIME_MS;
  if (!Number.isSafeInteger(lifetimeMs) || lifetimeMs <= 0) {
    throw new RangeError(`sessionLifetimeMs must be a positive integer, received ${lifetimeMs}`);
  }

  const sessions = new SessionStore(lifetimeMs, now);
  const queue = new SerialQueue();

  const createProfile: MethodHandler<PasswordParams, { created: true }> = {
    params: passwordSchema,
    handle: (params, ctx) => queue.run(async () => {
      const password = takePassword(params);

      const failedRules = findFailedPasswordRules(password);
      if (failedRules.length > 0) {
        throw new BacktestrError('E_WEAK_PASSWORD', `password does not meet the policy: ${failedRules.join(', ')}`, {
          failedRules: failedRules.join(','),
          minCodePoints: MIN_PASSWORD_CODE_POINTS,
        });
      }

      const files = new AuthStateFiles(ctx.stateDir);
      if ((await files.readProfile()) !== null) {
        throw new BacktestrError('E_PROFILE_EXISTS', 'a profile already exists in this profile directory');
      }

      const passwordBytes = encodePassword(password);
      let passwordHash: string;
      try {
        passwordHash = await hashPassword(passwordBytes);
      } finally {
        passwordBytes.fill(0);
      }

      await files.createProfile({ version: 1, passwordHash, createdAt: now() });
      await files.writeLockout(EMPTY_LOCKOUT);

      ctx.log.info({ event: 'profile_created' }, 'auth profile created');
      ctx.securityEvent({ type: 'auth.profile_created', severity: 'info', details: {} });
      return { created: true };
    }),
  };

  const unlock: MethodHandler<PasswordParams, { session: string; expiresAt: number }> = {
    params: passwordSchema,
    handle: (params, ctx) => queue.run(async () => {
      const password = takePassword(params);
      const files = new AuthStateFiles(ctx.stateDir);

      const profile = await files.readProfile();
      if (profile === null) throw new BacktestrError('E_PROFILE_MISSING', 'no profile exists; create one first');

      // The lock is checked before the password is touched, so a locked profile gives no oracle.
      const before = await files.readLockout();
      const decision = checkLockout(before, now());
      if (decision.kind === 'locked') {
        if (decision.record !== before) {
          await files.writeLockout(decision.record);
        }
        ctx.securityEvent({ type: 'auth.locked_attempt', severity: 'warning', details: { retryAfterMs: decision.retryAfterMs } });
        throw lockedOut(decision.retryAfterMs);
      }

      // Count the attempt as failed before verifying, so killing the process during the
      // verification cannot buy an uncounted guess. Success resets the counter below.
      const current = decision.record;
      await files.writeLockout({ version: 1, failures: current.failures + 1, lockedUntil: null });

      const passwordBytes = encodePassword(password);
      let matches: boolean;
      try {
        matches = await verifyPassword(profile.passwordHash, passwordBytes);
      } finally {
        passwordBytes.fill(0);
      }

      if (!matches) {
        const failed = recordFailure(current, now());
        await files.writeLockout(failed);
        const attemptsLeft = Math.max(0, MAX_FAILED_UNLOCKS - failed.failures);
        ctx.securityEvent({ type: 'auth.wrong_password', severity: 'warning', details: { attemptsLeft } });

        if (failed.lockedUntil !== null) {
          const retryAfterMs = failed.lockedUntil - now();
          ctx.log.warn({ event: 'lockout_started', retryAfterMs }, 'auth profile locked after repeated wrong passwords');
          ctx.securityEvent({ type: 'auth.lockout_started', severity: 'critical', details: { retryAfterMs, failures: failed.failures } });
          throw new BacktestrError('E_WRONG_PASSWORD', 'wrong password; the profile is now locked', { attemptsLeft, retryAfterMs });
        }
        throw new BacktestrError('E_WRONG_PASSWORD', 'wrong password', { attemptsLeft });
      }

      await files.writeLockout(EMPTY_LOCKOUT);
      const issued = sessions.issue();
      ctx.log.info({ event: 'unlock_ok', expiresAt: issued.expiresAt }, 'auth profile unlocked');
      ctx.securityEvent({ type: 'auth.unlock_ok', severity: 'info', details: { expiresAt: issued.expiresAt } });
      return issued;
    }),
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
    methods: { createProfile, unlock, validateSession, lock, status },
    async start(ctx: ServiceContext) {
      await ensurePrivateDir(ctx.stateDir);
    },
    async stop(ctx: ServiceContext) {
      sessions.endAll();
      ctx.log.info({ event: 'stopped' }, 'auth sessions ended on stop');
    },
  };
}

/**
 * Moves the password out of the params object so no other reference to it outlives the call.
 * NOTE: JS strings are immutable and cannot be zeroed. The string stays in the heap until the
 * garbage collector reclaims it, and the runtime's receive buffer is outside this service's reach.
 */
function takePassword(params: PasswordParams): string {
  const password = params.password;
  params.password = '';
  return password;
}

function lockedOut(retryAfterMs: number): BacktestrError {
  return new BacktestrError('E_LOCKED_OUT', `too many wrong passwords; try again in ${Math.ceil(retryAfterMs / 1000)} s`, { retryAfterMs });
}

export const authService: ServiceDefinition = createAuthService();
