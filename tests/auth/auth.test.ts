/**
 * Auth without passwords: the profile record, the lockout counter around each password check that
 * storage performs, and sessions. The kernel drives beginUnlock and finishUnlock in real use.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { createAuthService, type UnlockOutcome } from '../../services/auth/service';
import { LOCKOUT_DURATION_MS } from '../../services/auth/lockout';
import { DEFAULT_SESSION_LIFETIME_MS } from '../../services/auth/sessions';
import type { ServiceContext, ServiceDefinition } from '../../services/runtime/types';
import { createTestContext, invoke, type TestContext, manualClock, errorOf as codeOf } from '../support/service-context';

interface Session {
  session: string;
  expiresAt: number;
}

/** One password check as the kernel runs it, with storage's verdict given as `outcome`. */
async function check<R = unknown>(auth: ServiceDefinition, ctx: ServiceContext, outcome: UnlockOutcome): Promise<R> {
  const { attempt } = await invoke<{ attempt: string }>(auth, ctx, 'beginUnlock', {});
  return invoke<R>(auth, ctx, 'finishUnlock', { attempt, outcome });
}

function readLockout(t: TestContext): { failures: number; lockedUntil: number | null } {
  return JSON.parse(readFileSync(path.join(t.ctx.stateDir, 'lockout.json'), 'utf8'));
}

describe('auth service', () => {
  let t: TestContext;
  let clock: ReturnType<typeof manualClock>;
  let auth: ServiceDefinition;

  beforeEach(async () => {
    t = createTestContext('auth');
    clock = manualClock();
    auth = createAuthService({ now: clock.now });
    await auth.start?.(t.ctx);
  });

  afterEach(() => {
    t.cleanup();
  });

  test('no method takes a password', async () => {
    expect(Object.keys(auth.methods).sort()).toEqual(['beginUnlock', 'endAllSessions', 'finishUnlock', 'lock', 'recordProfile', 'status', 'validateSession']);
    for (const method of ['recordProfile', 'beginUnlock']) {
      const error = await codeOf(invoke(auth, t.ctx, method, { password: 'Correct-Horse-7-battery' }));
      expect([method, error.code]).toEqual([method, 'E_INVALID_PARAMS']);
    }
  });

  test('recordProfile stores no password material', async () => {
    expect(await invoke(auth, t.ctx, 'recordProfile', {})).toEqual({ recorded: true });

    const profileFile = path.join(t.ctx.stateDir, 'profile.json');
    const profile = JSON.parse(readFileSync(profileFile, 'utf8'));
    expect(profile).toEqual({ version: 2, createdAt: clock.now() });
    expect(statSync(profileFile).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(t.ctx.stateDir, 'lockout.json')).mode & 0o777).toBe(0o600);
    expect(statSync(t.ctx.stateDir).mode & 0o777).toBe(0o700);
    expect(t.events.map((e) => e.type)).toEqual(['auth.profile_created']);
    expect(await invoke(auth, t.ctx, 'status', {})).toEqual({ profileExists: true, lockedOut: false, retryAfterMs: 0 });
  });

  test('recordProfile twice fails with E_PROFILE_EXISTS', async () => {
    await invoke(auth, t.ctx, 'recordProfile', {});
    expect((await codeOf(invoke(auth, t.ctx, 'recordProfile', {}))).code).toBe('E_PROFILE_EXISTS');

    const other = createAuthService();
    expect((await codeOf(invoke(other, t.ctx, 'recordProfile', {}))).code).toBe('E_PROFILE_EXISTS');
  });

  test('recordProfile keeps an existing failure counter', async () => {
    // A repair after a crash records the profile late; attempts counted before must stay.
    writeFileSync(path.join(t.ctx.stateDir, 'lockout.json'), JSON.stringify({ version: 1, failures: 3, lockedUntil: null }));
    await invoke(auth, t.ctx, 'recordProfile', {});
    expect(readLockout(t).failures).toBe(3);
  });

  test('profile of the unencrypted version is refused', async () => {
    writeFileSync(path.join(t.ctx.stateDir, 'profile.json'), JSON.stringify({ version: 1, passwordHash: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA', createdAt: 1 }));
    const error = await codeOf(invoke(auth, t.ctx, 'beginUnlock', {}));
    expect(error.code).toBe('E_PROFILE_MISSING');
    expect(error.message).toContain('encryption at rest');
  });

  test('beginUnlock without a profile fails with E_PROFILE_MISSING', async () => {
    const error = await codeOf(invoke(auth, t.ctx, 'beginUnlock', {}));
    expect(error.code).toBe('E_PROFILE_MISSING');
  });

  test('beginUnlock counts the attempt before the check', async () => {
    await invoke(auth, t.ctx, 'recordProfile', {});
    const { attempt } = await invoke<{ attempt: string }>(auth, t.ctx, 'beginUnlock', {});
    expect(attempt).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(readLockout(t)).toEqual({ version: 1, failures: 1, lockedUntil: null });
  });

  test('unlocked outcome issues a session that validates until lock', async () => {
    await invoke(auth, t.ctx, 'recordProfile', {});
    const { session, expiresAt } = await check<Session>(auth, t.ctx, 'unlocked');

    expect(session).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(session, 'base64url')).toHaveLength(32);
    expect(expiresAt).toBe(clock.now() + DEFAULT_SESSION_LIFETIME_MS);
    expect(readLockout(t).failures).toBe(0);
    expect(await invoke(auth, t.ctx, 'validateSession', { session })).toEqual({ valid: true, expiresAt });

    expect(await invoke(auth, t.ctx, 'lock', { session })).toEqual({ locked: true });
    expect(await invoke(auth, t.ctx, 'validateSession', { session })).toEqual({ valid: false, expiresAt: null });

    const again = await codeOf(invoke(auth, t.ctx, 'lock', { session }));
    expect(again.code).toBe('E_SESSION_INVALID');
  });

  test('verified outcome resets without a session', async () => {
    await invoke(auth, t.ctx, 'recordProfile', {});
    await codeOf(check(auth, t.ctx, 'wrong-password'));
    expect(await check(auth, t.ctx, 'verified')).toEqual({ reset: true });
    expect(readLockout(t).failures).toBe(0);
    expect(t.events.map((e) => e.type)).toContain('auth.password_verified');
    expect(t.events.map((e) => e.type)).not.toContain('auth.unlock_ok');
  });

  test('aborted outcome leaves the attempt counted', async () => {
    await invoke(auth, t.ctx, 'recordProfile', {});
    expect(await check(auth, t.ctx, 'aborted')).toEqual({ counted: true });
    expect(readLockout(t).failures).toBe(1);
    expect(t.events.map((e) => e.type)).toContain('auth.unlock_aborted');

    const next = await codeOf(check(auth, t.ctx, 'wrong-password'));
    expect(next.details.attemptsLeft).toBe(3);
  });

  test('not-checked outcome takes the count back', async () => {
    await invoke(auth, t.ctx, 'recordProfile', {});
    await codeOf(check(auth, t.ctx, 'wrong-password'));
    expect(readLockout(t).failures).toBe(1);
    expect(await check(auth, t.ctx, 'not-checked')).toEqual({ uncounted: true });
    // The earlier wrong password stays counted; only this attempt is taken back.
    expect(readLockout(t).failures).toBe(1);
    for (let i = 0; i < 10; i++) await check(auth, t.ctx, 'not-checked');
    expect(readLockout(t).failures).toBe(1);
    expect((await invoke<{ lockedOut: boolean }>(auth, t.ctx, 'status', {})).lockedOut).toBe(false);
  });

  test('unknown or finished attempt is rejected', async () => {
    await invoke(auth, t.ctx, 'recordProfile', {});
    const forged = Buffer.alloc(16, 1).toString('base64url');
    expect((await codeOf(invoke(auth, t.ctx, 'finishUnlock', { attempt: forged, outcome: 'unlocked' }))).code).toBe('E_SESSION_INVALID');

    const { attempt } = await invoke<{ attempt: string }>(auth, t.ctx, 'beginUnlock', {});
    await invoke(auth, t.ctx, 'finishUnlock', { attempt, outcome: 'aborted' });
    expect((await codeOf(invoke(auth, t.ctx, 'finishUnlock', { attempt, outcome: 'unlocked' }))).code).toBe('E_SESSION_INVALID');
    expect(readLockout(t).failures).toBe(1);
  });

  test('unknown outcome fails schema check', async () => {
    await invoke(auth, t.ctx, 'recordProfile', {});
    const { attempt } = await invoke<{ attempt: string }>(auth, t.ctx, 'beginUnlock', {});
    expect((await codeOf(invoke(auth, t.ctx, 'finishUnlock', { attempt, outcome: 'ok' }))).code).toBe('E_INVALID_PARAMS');
  });

  test('sessions are distinct and an unknown token is not valid', async () => {
    await invoke(auth, t.ctx, 'recordProfile', {});
    const first = await check<Session>(auth, t.ctx, 'unlocked');
    const second = await check<Session>(auth, t.ctx, 'unlocked');
    expect(first.session).not.toBe(second.session);

    await invoke(auth, t.ctx, 'lock', { session: first.session });
    expect(await invoke(auth, t.ctx, 'validateSession', { session: second.session })).toEqual({ valid: true, expiresAt: second.expiresAt });

    const forged = Buffer.alloc(32, 7).toString('base64url');
    expect(await invoke(auth, t.ctx, 'validateSession', { session: forged })).toEqual({ valid: false, expiresAt: null });
  });

  test('endAllSessions ends every session', async () => {
    await invoke(auth, t.ctx, 'recordProfile', {});
    const first = await check<Session>(auth, t.ctx, 'unlocked');
    const second = await check<Session>(auth, t.ctx, 'unlocked');
    expect(await invoke(auth, t.ctx, 'endAllSessions', {})).toEqual({ ended: 2 });
    for (const { session } of [first, second]) {
      expect(await invoke(auth, t.ctx, 'validateSession', { session })).toEqual({ valid: false, expiresAt: null });
    }
  });

  test('malformed session token fails schema check', async () => {
    const error = await codeOf(invoke(auth, t.ctx, 'validateSession', { session: 'not a token' }));
    expect(error.code).toBe('E_INVALID_PARAMS');
  });

  test('session expires after its lifetime', async () => {
    const shortLived = createAuthService({ now: clock.now, sessionLifetimeMs: 60_000 });
    await invoke(shortLived, t.ctx, 'recordProfile', {});
    const { session } = await check<Session>(shortLived, t.ctx, 'unlocked');

    clock.advance(59_999);
    expect((await invoke<{ valid: boolean }>(shortLived, t.ctx, 'validateSession', { session })).valid).toBe(true);
    clock.advance(1);
    expect((await invoke<{ valid: boolean }>(shortLived, t.ctx, 'validateSession', { session })).valid).toBe(false);
  });

  test('five wrong passwords lock the profile for 15 minutes', async () => {
    await invoke(auth, t.ctx, 'recordProfile', {});

    for (let expectedLeft = 4; expectedLeft >= 1; expectedLeft--) {
      const error = await codeOf(check(auth, t.ctx, 'wrong-password'));
      expect(error.code).toBe('E_WRONG_PASSWORD');
      expect(error.details.attemptsLeft).toBe(expectedLeft);
    }
    const fifth = await codeOf(check(auth, t.ctx, 'wrong-password'));
    expect(fifth.code).toBe('E_WRONG_PASSWORD');
    expect(fifth.details.attemptsLeft).toBe(0);
    expect(fifth.details.retryAfterMs).toBe(LOCKOUT_DURATION_MS);

    // Even the right password is rejected while locked: beginUnlock fails before storage is asked.
    clock.advance(60_000);
    const locked = await codeOf(invoke(auth, t.ctx, 'beginUnlock', {}));
    expect(locked.code).toBe('E_LOCKED_OUT');
    expect(locked.details.retryAfterMs).toBe(LOCKOUT_DURATION_MS - 60_000);
    expect(await invoke(auth, t.ctx, 'status', {})).toEqual({
      profileExists: true,
      lockedOut: true,
      retryAfterMs: LOCKOUT_DURATION_MS - 60_000,
    });

    const types = t.events.map((e) => e.type);
    expect(types.filter((type) => type === 'auth.wrong_password')).toHaveLength(5);
    expect(types).toContain('auth.lockout_started');
    expect(types[types.length - 1]).toBe('auth.locked_attempt');
    expect(t.events.find((e) => e.type === 'auth.lockout_started')?.severity).toBe('critical');

    // After the lock ends the right password works and the counter starts again from zero.
    clock.advance(LOCKOUT_DURATION_MS);
    await expect(check<Session>(auth, t.ctx, 'unlocked')).resolves.toHaveProperty('session');
    const afterReset = await codeOf(check(auth, t.ctx, 'wrong-password'));
    expect(afterReset.details.attemptsLeft).toBe(4);
  });

  test('expired lock resets the counter without a success', async () => {
    await invoke(auth, t.ctx, 'recordProfile', {});
    for (let i = 0; i < 5; i++) await codeOf(check(auth, t.ctx, 'wrong-password'));

    clock.advance(LOCKOUT_DURATION_MS);
    const error = await codeOf(check(auth, t.ctx, 'wrong-password'));
    expect(error.code).toBe('E_WRONG_PASSWORD');
    expect(error.details.attemptsLeft).toBe(4);
  });

  test('success resets the failure counter', async () => {
    await invoke(auth, t.ctx, 'recordProfile', {});
    for (let i = 0; i < 4; i++) await codeOf(check(auth, t.ctx, 'wrong-password'));
    await check(auth, t.ctx, 'unlocked');

    const error = await codeOf(check(auth, t.ctx, 'wrong-password'));
    expect(error.details.attemptsLeft).toBe(4);
  });

  test('parallel attempts cannot exceed the limit', async () => {
    await invoke(auth, t.ctx, 'recordProfile', {});
    const begins = await Promise.allSettled(Array.from({ length: 10 }, () => invoke(auth, t.ctx, 'beginUnlock', {})));

    expect(begins.filter((result) => result.status === 'fulfilled')).toHaveLength(5);
    const codes = begins.flatMap((result) => (result.status === 'rejected' ? [(result.reason as { code: string }).code] : []));
    expect(codes).toEqual(Array(5).fill('E_LOCKED_OUT'));
    expect(readLockout(t).failures).toBe(5);
  });

  test('interleaved attempts each stay counted', async () => {
    await invoke(auth, t.ctx, 'recordProfile', {});
    const first = await invoke<{ attempt: string }>(auth, t.ctx, 'beginUnlock', {});
    const second = await invoke<{ attempt: string }>(auth, t.ctx, 'beginUnlock', {});

    const firstError = await codeOf(invoke(auth, t.ctx, 'finishUnlock', { attempt: first.attempt, outcome: 'wrong-password' }));
    expect(firstError.details.attemptsLeft).toBe(3);
    const secondError = await codeOf(invoke(auth, t.ctx, 'finishUnlock', { attempt: second.attempt, outcome: 'wrong-password' }));
    expect(secondError.details.attemptsLeft).toBe(3);
    expect(readLockout(t).failures).toBe(2);
  });

  test('corrupt lockout file fails closed', async () => {
    await invoke(auth, t.ctx, 'recordProfile', {});
    writeFileSync(path.join(t.ctx.stateDir, 'lockout.json'), '{"version":1,"failures":"zero"');

    const error = await codeOf(invoke(auth, t.ctx, 'beginUnlock', {}));
    expect(error.code).toBe('E_INTERNAL');
  });

  test('maxed counter without lock end starts a lock', async () => {
    // The state a crash leaves between counting the fifth attempt and writing the lock end.
    await invoke(auth, t.ctx, 'recordProfile', {});
    writeFileSync(path.join(t.ctx.stateDir, 'lockout.json'), JSON.stringify({ version: 1, failures: 5, lockedUntil: null }));

    const error = await codeOf(invoke(auth, t.ctx, 'beginUnlock', {}));
    expect(error.code).toBe('E_LOCKED_OUT');
    expect(error.details.retryAfterMs).toBe(LOCKOUT_DURATION_MS);
  });
});

describe('auth service across a restart', () => {
  const contexts: TestContext[] = [];

  afterAll(() => {
    // Only the last context removes the shared directory; the others just close their logs.
    for (const t of contexts) t.cleanup();
  });

  test('failure counter and lock survive a fresh instance', async () => {
    const clock = manualClock();
    const first = createTestContext('auth');
    contexts.push(first);
    const before = createAuthService({ now: clock.now });
    await before.start?.(first.ctx);

    await invoke(before, first.ctx, 'recordProfile', {});
    for (let i = 0; i < 3; i++) await codeOf(check(before, first.ctx, 'wrong-password'));

    const second = createTestContext('auth', { profileDir: first.profileDir });
    contexts.push(second);
    const after = createAuthService({ now: clock.now });
    await after.start?.(second.ctx);

    const fourth = await codeOf(check(after, second.ctx, 'wrong-password'));
    expect(fourth.details.attemptsLeft).toBe(1);
    const fifth = await codeOf(check(after, second.ctx, 'wrong-password'));
    expect(fifth.details.attemptsLeft).toBe(0);

    const third = createTestContext('auth', { profileDir: first.profileDir });
    contexts.push(third);
    const restarted = createAuthService({ now: clock.now });
    await restarted.start?.(third.ctx);

    const locked = await codeOf(invoke(restarted, third.ctx, 'beginUnlock', {}));
    expect(locked.code).toBe('E_LOCKED_OUT');
    expect(await invoke(restarted, third.ctx, 'status', {})).toEqual({
      profileExists: true,
      lockedOut: true,
      retryAfterMs: LOCKOUT_DURATION_MS,
    });

    clock.advance(LOCKOUT_DURATION_MS);
    await expect(check(restarted, third.ctx, 'unlocked')).resolves.toHaveProperty('session');
  });

  test('attempt begun before a restart stays counted', async () => {
    const first = createTestContext('auth');
    contexts.push(first);
    const before = createAuthService();
    await invoke(before, first.ctx, 'recordProfile', {});
    const { attempt } = await invoke<{ attempt: string }>(before, first.ctx, 'beginUnlock', {});

    const after = createAuthService();
    const error = await codeOf(invoke(after, first.ctx, 'finishUnlock', { attempt, outcome: 'unlocked' }));
    expect(error.code).toBe('E_SESSION_INVALID');
    expect(JSON.parse(readFileSync(path.join(first.ctx.stateDir, 'lockout.json'), 'utf8')).failures).toBe(1);
  });

  test('sessions end with the process', async () => {
    const first = createTestContext('auth');
    contexts.push(first);
    const before = createAuthService();
    await invoke(before, first.ctx, 'recordProfile', {});
    const { session } = await check<Session>(before, first.ctx, 'unlocked');

    const after = createAuthService();
    expect(await invoke(after, first.ctx, 'validateSession', { session })).toEqual({ valid: false, expiresAt: null });
    expect(await invoke(before, first.ctx, 'validateSession', { session })).toMatchObject({ valid: true });
  });
});
