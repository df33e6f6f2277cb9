/**
 * The password flow through the real kernel and service processes: the keyring in storage is the
 * one verifier, storage holds it only while a client session is unlocked, and a storage crash
 * ends every session. Keyrings here use tiny Argon2id parameters (see startKernel);
 * unlock-calibrated.test.ts covers the calibrated ones.
 */
import { randomInt } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { KernelClient } from '../../kernel/client';
import { Keyring } from '../../services/storage/crypto';
import { auditServices, expectCode, SP500_CSV, startKernel, temporaryProfile, TEST_PASSWORD, waitFor, type RunningKernel } from '../support/harness';

const NEW_PASSWORD = 'Battery-Staple-43-horse';

interface StorageStatus {
  keyringExists: boolean;
  unlocked: boolean;
}

/** Asks storage through the kernel's own route, which works in either phase. */
async function storageStatus(running: RunningKernel): Promise<StorageStatus> {
  return (await running.kernel.route('kernel', 'storage.status', {})) as StorageStatus;
}

async function storagePid(client: KernelClient): Promise<number> {
  const storage = (await auditServices(client)).find((service) => service.name === 'storage');
  return storage!.pid!;
}

async function waitForStorageRestart(client: KernelClient, previousPid: number): Promise<void> {
  await waitFor(async () => {
    const storage = (await auditServices(client)).find((service) => service.name === 'storage')!;
    return storage.state === 'running' && storage.pid !== previousPid;
  }, 30_000, 'storage to restart');
}

function readSecurityLog(profileDir: string): string {
  return fs.readFileSync(path.join(profileDir, 'logs', 'security.log'), 'utf8');
}

describe('unlock flow', () => {
  let running: RunningKernel;

  afterEach(async () => {
    await running?.stop();
  });

  test('create, unlock, import, lock and unlock again', async () => {
    running = await startKernel();
    const { client } = running;
    expect(await client.call('auth.createProfile', { password: TEST_PASSWORD })).toEqual({ created: true });
    expect(await storageStatus(running)).toEqual(expect.objectContaining({ keyringExists: true, unlocked: false }));
    expect(fs.readdirSync(path.join(running.profileDir, 'auth')).sort()).toEqual(['lockout.json', 'profile.json']);
    expect(fs.readFileSync(path.join(running.profileDir, 'auth', 'profile.json'), 'utf8')).not.toContain('argon2');

    const { session } = await client.call<{ session: string }>('auth.unlock', { password: TEST_PASSWORD });
    expect((await storageStatus(running)).unlocked).toBe(true);
    await client.call('storage.importBars', { symbol: 'SPX', csv: fs.readFileSync(SP500_CSV) });

    await client.call('auth.lock', { session });
    expect((await storageStatus(running)).unlocked).toBe(false);
    await expectCode(client.call('storage.listSymbols', {}), 'E_POLICY_DENIED');

    await client.call('auth.unlock', { password: TEST_PASSWORD });
    expect(await client.call('storage.listSymbols', {})).toEqual([expect.objectContaining({ symbol: 'SPX', bars: 5105 })]);
  });

  test('wrong password is refused by the keyring', async () => {
    running = await startKernel();
    await running.client.call('auth.createProfile', { password: TEST_PASSWORD });
    const details = await expectCode(running.client.call('auth.unlock', { password: NEW_PASSWORD }), 'E_WRONG_PASSWORD');
    expect(details.attemptsLeft).toBe(4);
    expect((await storageStatus(running)).unlocked).toBe(false);
    expect(readSecurityLog(running.profileDir)).not.toContain(NEW_PASSWORD);
  });

  test('weak password reaches no service', async () => {
    running = await startKernel();
    const details = await expectCode(running.client.call('auth.createProfile', { password: 'Short-1!' }), 'E_WEAK_PASSWORD');
    expect(details.failedRules).toBe('minLength');
    expect((await storageStatus(running)).keyringExists).toBe(false);
  });

  test('second connection verifies against the open keyring', async () => {
    running = await startKernel();
    await running.client.call('auth.createProfile', { password: TEST_PASSWORD });
    const first = await running.client.call<{ session: string }>('auth.unlock', { password: TEST_PASSWORD });

    const second = await KernelClient.connect(running.kernel.runtimeDir, running.kernel.embeddedClientKey);
    try {
      await expectCode(second.call('auth.unlock', { password: NEW_PASSWORD }), 'E_WRONG_PASSWORD');
      await second.call('auth.unlock', { password: TEST_PASSWORD });

      // The first session locks; the second still holds storage open.
      await running.client.call('auth.lock', { session: first.session });
      expect((await storageStatus(running)).unlocked).toBe(true);
      expect(await second.call('storage.listSymbols', {})).toEqual([]);
    } finally {
      await second.close();
    }
    // Closing the last unlocked connection locks storage.
    await waitFor(async () => !(await storageStatus(running)).unlocked, 10_000, 'storage to lock after the last connection closed');
  });

  test('expired session locks storage', async () => {
    running = await startKernel({ sessionLifetimeMs: 1500, sessionCheckIntervalMs: 200 });
    await running.client.call('auth.createProfile', { password: TEST_PASSWORD });
    await running.client.call('auth.unlock', { password: TEST_PASSWORD });
    expect((await storageStatus(running)).unlocked).toBe(true);

    await waitFor(async () => !(await storageStatus(running)).unlocked, 15_000, 'storage to lock after the session expired');
    await expectCode(running.client.call('storage.listSymbols', {}), 'E_POLICY_DENIED');
    // Storage itself refuses data methods while locked, whatever the caller's phase.
    await expectCode(running.kernel.route('kernel', 'storage.queryBars', { symbol: 'SPX' }, 'unlocked'), 'E_SESSION_INVALID');
  });

  test('storage crash ends every session', async () => {
    running = await startKernel();
    await running.client.call('auth.createProfile', { password: TEST_PASSWORD });
    await running.client.call('auth.unlock', { password: TEST_PASSWORD });
    const pid = await storagePid(running.client);

    process.kill(pid, 'SIGKILL');
    await waitForStorageRestart(running.client, pid);

    expect((await storageStatus(running)).unlocked).toBe(false);
    await expectCode(running.client.call('storage.listSymbols', {}), 'E_POLICY_DENIED');
    await waitFor(() => readSecurityLog(running.profileDir).includes('session.ended_all'), 10_000, 'the session.ended_all event');
    await running.client.call('auth.unlock', { password: TEST_PASSWORD });
    expect(await running.client.call('storage.listSymbols', {})).toEqual([]);
  });

  test('password change swaps the valid password', async () => {
    running = await startKernel();
    await running.client.call('auth.createProfile', { password: TEST_PASSWORD });
    const { session } = await running.client.call<{ session: string }>('auth.unlock', { password: TEST_PASSWORD });

    await expectCode(running.client.call('storage.changePassword', { current: TEST_PASSWORD, next: 'weak' }), 'E_WEAK_PASSWORD');
    const wrong = await expectCode(running.client.call('storage.changePassword', { current: NEW_PASSWORD, next: NEW_PASSWORD }), 'E_WRONG_PASSWORD');
    // The current-password check counts against the same lockout as an unlock.
    expect(wrong.attemptsLeft).toBe(4);

    expect(await running.client.call('storage.changePassword', { current: TEST_PASSWORD, next: NEW_PASSWORD })).toEqual({ changed: true });
    await running.client.call('auth.lock', { session });

    await expectCode(running.client.call('auth.unlock', { password: TEST_PASSWORD }), 'E_WRONG_PASSWORD');
    await running.client.call('auth.unlock', { password: NEW_PASSWORD });
    expect(readSecurityLog(running.profileDir)).not.toContain(NEW_PASSWORD);
  });

  test('storage killed during password change', async () => {
    // Each kill is a consecutive crash, which doubles the restart delay; start it small.
    running = await startKernel({ restartBaseDelayMs: 5 });
    const passwords = [TEST_PASSWORD, NEW_PASSWORD];
    await running.client.call('auth.createProfile', { password: TEST_PASSWORD });
    const keyringFile = path.join(running.profileDir, 'data', 'keyring.bin');
    let current = TEST_PASSWORD;

    for (let round = 0; round < 10; round++) {
      await running.client.call('auth.unlock', { password: current });
      const next = current === passwords[0] ? passwords[1] : passwords[0];
      const pid = await storagePid(running.client);

      const change = running.client.call('storage.changePassword', { current, next }).then(
        () => 'changed',
        (error: { code: string }) => error.code,
      );
      await new Promise((resolve) => setTimeout(resolve, randomInt(0, 25)));
      process.kill(pid, 'SIGKILL');
      expect([round, await change]).toEqual([round, expect.stringMatching(/^(changed|E_RUN_ABORTED|E_SERVICE_UNAVAILABLE)$/)]);
      await waitForStorageRestart(running.client, pid);

      // A kill before the kernel reached storage gives E_SERVICE_UNAVAILABLE. Whatever moment it
      // hit, exactly one of the two passwords opens the keyring.
      const opened: string[] = [];
      for (const password of passwords) {
        try {
          (await Keyring.open(keyringFile, password, { allowWeakKdfForTests: true })).lock();
          opened.push(password);
        } catch (error) {
          expect([round, (error as { code: string }).code]).toEqual([round, 'E_WRONG_PASSWORD']);
        }
      }
      expect([round, opened.length]).toEqual([round, 1]);
      current = opened[0];

      // The kill ended the session; the surviving password unlocks through the kernel.
      await expectCode(running.client.call('storage.listSymbols', {}), 'E_POLICY_DENIED');
      const { session } = await running.client.call<{ session: string }>('auth.unlock', { password: current });
      expect(await running.client.call('storage.listSymbols', {})).toEqual([]);
      await running.client.call('auth.lock', { session });
    }
  });

  test('profile record repaired after a crash', async () => {
    const profileDir = temporaryProfile();
    running = await startKernel({ profileDir });
    await running.client.call('auth.createProfile', { password: TEST_PASSWORD });
    await running.stop();

    // The state a crash between the keyring and the auth record leaves.
    fs.rmSync(path.join(profileDir, 'auth', 'profile.json'));
    running = await startKernel({ profileDir });
    await expectCode(running.client.call('auth.createProfile', { password: NEW_PASSWORD }), 'E_PROFILE_EXISTS');
    expect(fs.existsSync(path.join(profileDir, 'auth', 'profile.json'))).toBe(true);

    fs.rmSync(path.join(profileDir, 'auth', 'profile.json'));
    await running.client.call('auth.unlock', { password: TEST_PASSWORD });
    expect(await running.client.call<{ profileExists: boolean }>('auth.status', {})).toEqual(expect.objectContaining({ profileExists: true }));
  });

  test('secret value stays out of logs', async () => {
    const canary = 'canary-secret-value-7d41';
    running = await startKernel();
    await running.client.call('auth.createProfile', { password: TEST_PASSWORD });
    await running.client.call('auth.unlock', { password: TEST_PASSWORD });
    await running.client.call('storage.putSecret', { name: 'broker', value: canary });
    expect(await running.client.call('storage.getSecret', { name: 'broker' })).toEqual({ name: 'broker', value: canary });
    await running.client.call('storage.rekey', {});
    const oversized = await expectCode(running.client.call('storage.putSecret', { name: 'big', value: canary.repeat(1000) }), 'E_INVALID_PARAMS');
    await waitFor(() => readSecurityLog(running.profileDir).includes('storage.rekeyed'), 10_000, 'the storage.rekeyed event');

    const serviceLogs = (['storage', 'auth', 'monitor'] as const).map((name) => JSON.stringify(serviceStderr(running, name))).join('\n');
    expect(serviceLogs.length).toBeGreaterThan(0);
    expect(serviceLogs).not.toContain('canary-secret');
    expect(readSecurityLog(running.profileDir)).not.toContain('canary-secret');
    expect(JSON.stringify(oversized)).not.toContain('canary-secret');
  });
});

/** Returns the last lines a service wrote to stderr (its pino log), as the kernel captured them. */
function serviceStderr(running: RunningKernel, name: 'storage' | 'auth' | 'monitor'): readonly string[] {
  const services = (running.kernel as unknown as { services: Map<string, { process: { recentStderr: readonly string[] } }> }).services;
  return services.get(name)!.process.recentStderr;
}
