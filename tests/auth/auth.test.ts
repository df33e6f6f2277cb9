import { readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { BacktestrError } from '../../protocol/errors';
import { createAuthService } from '../../services/auth/service';
import { LOCKOUT_DURATION_MS } from '../../services/auth/lockout';
import { DEFAULT_SESSION_LIFETIME_MS } from '../../services/auth/sessions';
import type { ServiceDefinition } from '../../services/runtime/types';
import { createTestContext, invoke, type TestContext, manualClock, errorOf as codeOf } from '../support/service-context';

const GOOD_PASSWORD = 'Correct-Horse-7-battery';
const WRONG_PASSWORD = 'Wrong-Horse-7-battery';

interface Session {
  session: string;
  expiresAt: number;
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

  test('createProfile stores an Argon2id PHC string with private modes', async () => {
    const result = await invoke(auth, t.ctx, 'createProfile', { password: GOOD_PASSWORD });
    expect(result).toEqual({ created: true });

    const profileFile = path.join(t.ctx.stateDir, 'profile.json');
    const profile = JSON.parse(readFileSync(profileFile, 'utf8'));
    expect(profile.passwordHash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(statSync(profileFile).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(t.ctx.stateDir, 'lockout.json')).mode & 0o777).toBe(0o600);
    expect(statSync(t.ctx.stateDir).mode & 0o777).toBe(0o700);
    expect(t.events.map((e) => e.type)).toEqual(['auth.profile_created']);
  });

  test('createProfile twice fails with E_PROFILE_EXISTS', async () => {
    await invoke(auth, t.ctx, 'createProfile', { password: GOOD_PASSWORD });
    const error = await codeOf(invoke(auth, t.ctx, 'createProfile', { password: 'Another-Passw0rd!' }));
    expect(error.code).toBe('E_PROFILE_EXISTS');

    const other = createAuthService();
    const fromOther = await codeOf(invoke(other, t.ctx, 'createProfile', { password: 'Another-Passw0rd!' }));
    expect(fromOther.code).toBe('E_PROFILE_EXISTS');
  });

  test.each([
    ['Sh0rt!pass', 'minLength'],
    ['lower-case-only-1', 'uppercase'],
    ['UPPER-CASE-ONLY-1', 'lowercase'],
    ['No-Digits-At-All', 'digit'],
    ['NoSpecials1234567', 'special'],
    ['abc', 'minLength,uppercase,digit,special'],
  ])('weak password %j fails rules %s', async (password, rules) => {
    const error = await codeOf(invoke(auth, t.ctx, 'createProfile', { password }));
    expect(error.code).toBe('E_WEAK_PASSWORD');
    expect(error.details.failedRules).toBe(rules);
    expect(JSON.stringify(error.details)).not.toContain(password);
    expect(error.message).not.toContain(password);

    const status = await invoke(auth, t.ctx, 'status', {});
    expect(status).toEqual({ profileExists: false, lockedOut: false, retryAfterMs: 0 });
  });

  test('password length counts NFC code points', async () => {
    // 11 code points plus "e" and a combining acute accent, which NFC joins into one: 12 in all.
    const decomposed = 'Aa1!aaaaaaa' + 'e\u0301';
    expect(decomposed.length).toBe(13);
    await expect(invoke(auth, t.ctx, 'createProfile', { password: decomposed })).resolves.toEqual({ created: true });

    // The same password typed precomposed unlocks the profile.
    const unlocked = await invoke<Session>(auth, t.ctx, 'unlock', { password: 'Aa1!aaaaaaa\u00e9' });
    expect(unlocked.session).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  test('emoji count once toward the minimum length', async () => {
    // 11 code points but 13 UTF-16 units: still too short.
    const error = await codeOf(invoke(auth, t.ctx, 'createProfile', { password: 'Aa1\u{1F600}\u{1F600}aaaaaa' }));
    expect(error.code).toBe('E_WEAK_PASSWORD');
    expect(error.details.failedRules).toBe('minLength');
  });

  test('unlock without a profile fails with E_PROFILE_MISSING', async () => {
    const error = await codeOf(invoke(auth, t.ctx, 'unlock', { password: GOOD_PASSWORD }));
    expect(error.code).toBe('E_PROFILE_MISSING');
  });

  test('unlock issues a session that validates until lock', async () => {
    await invoke(auth, t.ctx, 'createProfile', { password: GOOD_PASSWORD });
    const { session, expiresAt } = await invoke<Session>(auth, t.ctx, 'unlock', { password: GOOD_PASSWORD });

    expect(session).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(session, 'base64url')).toHaveLength(32);
    expect(expiresAt).toBe(clock.now() + DEFAULT_SESSION_LIFETIME_MS);
    expect(await invoke(auth, t.ctx, 'validateSession', { session })).toEqual({ valid: true, expiresAt });

    expect(await invoke(auth, t.ctx, 'lock', { session })).toEqual({ locked: true });
    expect(await invoke(auth, t.ctx, 'validateSession', { session })).toEqual({ valid: false, expiresAt: null });

    const again = await codeOf(invoke(auth, t.ctx, 'lock', { session }));
    expect(again.code).toBe('E_SESSION_INVALID');
  });

  test('sessions are distinct and an unknown token is not valid', async () => {
    await invoke(auth, t.ctx, 'createProfile', { password: GOOD_PASSWORD });
    const first = await invoke<Session>(auth, t.ctx, 'unlock', { password: GOOD_PASSWORD });
    const second = await invoke<Session>(auth, t.ctx, 'unlock', { password: GOOD_PASSWORD });
    expect(first.session).not.toBe(second.session);

    await invoke(auth, t.ctx, 'lock', { session: first.session });
    expect(await invoke(auth, t.ctx, 'validateSession', { session: second.session })).toEqual({ valid: true, expiresAt: second.expiresAt });

    const forged = Buffer.alloc(32, 7).toString('base64url');
    expect(await invoke(auth, t.ctx, 'validateSession', { session: forged })).toEqual({ valid: false, expiresAt: null });
  });

  test('malformed session token fails schema check', async () => {
    const error = await codeOf(invoke(auth, t.ctx, 'validateSession', { session: 'not a token' }));
    expect(error.code).toBe('E_INVALID_PARAMS');
  });

  test('session expires after its lifetime', async () => {
    const shortLived = createAuthService({ now: clock.now, sessionLifetimeMs: 60_000 });
    await invoke(shortLived, t.ctx, 'createProfile', { password: GOOD_PASSWORD });
    const { session } = await invoke<Session>(shortLived, t.ctx, 'unlock', { password: GOOD_PASSWORD });

    clock.advance(59_999);
    expect((await invoke<{ valid: boolean }>(shortLived, t.ctx, 'validateSession', { session })).valid).toBe(true);
    clock.advance(1);
    expect((await invoke<{ valid: boolean }>(shortLived, t.ctx, 'validateSession', { session })).valid).toBe(false);
  });

  test('five wrong passwords lock the profile for 15 minutes', async () => {
    await invoke(auth, t.ctx, 'createProfile', { password: GOOD_PASSWORD });

    for (let expectedLeft = 4; expectedLeft >= 1; expectedLeft--) {
      const error = await codeOf(invoke(auth, t.ctx, 'unlock', { password: WRONG_PASSWORD }));
      expect(error.code).toBe('E_WRONG_PASSWORD');
      expect(error.details.attemptsLeft).toBe(expectedLeft);
    }
    const fifth = await codeOf(invoke(auth, t.ctx, 'unlock', { password: WRONG_PASSWORD }));
    expect(fifth.code).toBe('E_WRONG_PASSWORD');
    expect(fifth.details.attemptsLeft).toBe(0);
    expect(fifth.details.retryAfterMs).toBe(LOCKOUT_DURATION_MS);

    // Even the right password is rejected while locked.
    clock.advance(60_000);
    const locked = await codeOf(invoke(auth, t.ctx, 'unlock', { password: GOOD_PASSWORD }));
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
    await expect(invoke<Session>(auth, t.ctx, 'unlock', { password: GOOD_PASSWORD })).resolves.toHaveProperty('session');
    const afterReset = await codeOf(invoke(auth, t.ctx, 'unlock', { password: WRONG_PASSWORD }));
    expect(afterReset.details.attemptsLeft).toBe(4);
  });

  test('expired lock resets the counter without a success', async () => {
    await invoke(auth, t.ctx, 'createProfile', { password: GOOD_PASSWORD });
    for (let i = 0; i < 5; i++) await codeOf(invoke(auth, t.ctx, 'unlock', { password: WRONG_PASSWORD }));

    clock.advance(LOCKOUT_DURATION_MS);
    const error = await codeOf(invoke(auth, t.ctx, 'unlock', { password: WRONG_PASSWORD }));
    expect(error.code).toBe('E_WRONG_PASSWORD');
    expect(error.details.attemptsLeft).toBe(4);
  });

  test('success resets the failure counter', async () => {
    await invoke(auth, t.ctx, 'createProfile', { password: GOOD_PASSWORD });
    for (let i = 0; i < 4; i++) await codeOf(invoke(auth, t.ctx, 'unlock', { password: WRONG_PASSWORD }));
    await invoke(auth, t.ctx, 'unlock', { password: GOOD_PASSWORD });

    const error = await codeOf(invoke(auth, t.ctx, 'unlock', { password: WRONG_PASSWORD }));
    expect(error.details.attemptsLeft).toBe(4);
  });

  test('parallel wrong attempts cannot exceed the limit', async () => {
    await invoke(auth, t.ctx, 'createProfile', { password: GOOD_PASSWORD });
    const attempts = Array.from({ length: 10 }, () => codeOf(invoke(auth, t.ctx, 'unlock', { password: WRONG_PASSWORD })));
    const codes = (await Promise.all(attempts)).map((error) => error.code);

    expect(codes.filter((code) => code === 'E_WRONG_PASSWORD')).toHaveLength(5);
    expect(codes.filter((code) => code === 'E_LOCKED_OUT')).toHaveLength(5);
  });

  test('password never reaches log, events or errors', async () => {
    const canary = 'Canary-Secret-9-zebra';
    await invoke(auth, t.ctx, 'createProfile', { password: canary });
    await invoke(auth, t.ctx, 'unlock', { password: canary });
    const wrongCanary = 'Canary-Wrong-9-zebra';
    const errors: BacktestrError[] = [];
    for (let i = 0; i < 6; i++) errors.push(await codeOf(invoke(auth, t.ctx, 'unlock', { password: wrongCanary })));

    const everything = [t.readLog(), JSON.stringify(t.events), JSON.stringify(errors.map((e) => e.toWire()))].join('\n');
    expect(everything).not.toContain('Canary');
    for (const file of ['profile.json', 'lockout.json']) {
      expect(readFileSync(path.join(t.ctx.stateDir, file), 'utf8')).not.toContain('Canary');
    }
  });

  test('corrupt lockout file fails closed', async () => {
    await invoke(auth, t.ctx, 'createProfile', { password: GOOD_PASSWORD });
    writeFileSync(path.join(t.ctx.stateDir, 'lockout.json'), '{"version":1,"failures":"zero"');

    const error = await codeOf(invoke(auth, t.ctx, 'unlock', { password: GOOD_PASSWORD }));
    expect(error.code).toBe('E_INTERNAL');
  });

  test('maxed counter without lock end starts a lock', async () => {
    // The state a crash leaves between counting the fifth attempt and writing the lock end.
    await invoke(auth, t.ctx, 'createProfile', { password: GOOD_PASSWORD });
    writeFileSync(path.join(t.ctx.stateDir, 'lockout.json'), JSON.stringify({ version: 1, failures: 5, lockedUntil: null }));

    const error = await codeOf(invoke(auth, t.ctx, 'unlock', { password: GOOD_PASSWORD }));
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

    await invoke(before, first.ctx, 'createProfile', { password: GOOD_PASSWORD });
    for (let i = 0; i < 3; i++) await codeOf(invoke(before, first.ctx, 'unlock', { password: WRONG_PASSWORD }));

    const second = createTestContext('auth', { profileDir: first.profileDir });
    contexts.push(second);
    const after = createAuthService({ now: clock.now });
    await after.start?.(second.ctx);

    const fourth = await codeOf(invoke(after, second.ctx, 'unlock', { password: WRONG_PASSWORD }));
    expect(fourth.details.attemptsLeft).toBe(1);
    const fifth = await codeOf(invoke(after, second.ctx, 'unlock', { password: WRONG_PASSWORD }));
    expect(fifth.details.attemptsLeft).toBe(0);

    const third = createTestContext('auth', { profileDir: first.profileDir });
    contexts.push(third);
    const restarted = createAuthService({ now: clock.now });
    await restarted.start?.(third.ctx);

    const locked = await codeOf(invoke(restarted, third.ctx, 'unlock', { password: GOOD_PASSWORD }));
    expect(locked.code).toBe('E_LOCKED_OUT');
    expect(await invoke(restarted, third.ctx, 'status', {})).toEqual({
      profileExists: true,
      lockedOut: true,
      retryAfterMs: LOCKOUT_DURATION_MS,
    });

    clock.advance(LOCKOUT_DURATION_MS);
    await expect(invoke(restarted, third.ctx, 'unlock', { password: GOOD_PASSWORD })).resolves.toHaveProperty('session');
  });

  test('sessions end with the process', async () => {
    const first = createTestContext('auth');
    contexts.push(first);
    const before = createAuthService();
    await invoke(before, first.ctx, 'createProfile', { password: GOOD_PASSWORD });
    const { session } = await invoke<Session>(before, first.ctx, 'unlock', { password: GOOD_PASSWORD });

    const after = createAuthService();
    expect(await invoke(after, first.ctx, 'validateSession', { session })).toEqual({ valid: false, expiresAt: null });
    expect(await invoke(before, first.ctx, 'validateSession', { session })).toMatchObject({ valid: true });
  });
});
