/**
 * The production key derivation: Argon2id calibrated on this machine (about 0.5 s, up to
 * 256 MiB) inside the storage service under the privilege launcher, and an unlock whose storage
 * process is killed while it derives the key.
 */
import fs from 'node:fs';
import path from 'node:path';
import { MIN_ARGON2_PARAMS } from '../../services/storage/crypto';
import { auditServices, expectCode, startKernel, TEST_PASSWORD, waitFor, type RunningKernel } from '../support/harness';

interface Kdf {
  memoryKiB: number;
  timeCost: number;
  parallelism: number;
}

function readFailures(profileDir: string): number {
  const file = path.join(profileDir, 'auth', 'lockout.json');
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')).failures : 0;
}

/** Returns one row of /proc/PID/limits as [soft, hard]. */
function limitOf(pid: number, name: string): [string, string] {
  const line = fs.readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((row) => row.startsWith(name));
  const fields = line!.slice(name.length).trim().split(/\s+/);
  return [fields[0], fields[1]];
}

describe('calibrated key derivation', () => {
  let running: RunningKernel;

  afterEach(async () => {
    await running?.stop();
  });

  test('calibrated parameters stored and used', async () => {
    running = await startKernel({ weakKdfForTests: false });
    const storage = (await auditServices(running.client)).find((service) => service.name === 'storage')!;
    // Argon2id allocates its memory outside the V8 heap; no address-space or data limit may cut it short.
    expect(limitOf(storage.pid!, 'Max address space')).toEqual(['unlimited', 'unlimited']);
    expect(limitOf(storage.pid!, 'Max data size')).toEqual(['unlimited', 'unlimited']);

    await running.client.call('auth.createProfile', { password: TEST_PASSWORD });
    await running.client.call('auth.unlock', { password: TEST_PASSWORD });
    // Read after an unlock, so from the keyring file's header.
    const { kdf } = await running.client.call<{ kdf: Kdf }>('storage.status', {});
    expect(kdf.memoryKiB).toBeGreaterThanOrEqual(MIN_ARGON2_PARAMS.memoryKiB);
    expect(kdf.memoryKiB).toBeLessThanOrEqual(256 * 1024);
    expect(kdf.timeCost).toBeGreaterThanOrEqual(MIN_ARGON2_PARAMS.timeCost);
    expect(kdf.parallelism).toBe(1);

    const created = fs.readFileSync(path.join(running.profileDir, 'logs', 'security.log'), 'utf8').split('\n').find((line) => line.includes('storage.keyring_created'));
    expect(JSON.parse(created!).details).toEqual(expect.objectContaining({ memoryKiB: kdf.memoryKiB, timeCost: kdf.timeCost, weakKdfForTests: false }));
  });

  test('storage killed during unlock counts the attempt', async () => {
    running = await startKernel({ weakKdfForTests: false });
    await running.client.call('auth.createProfile', { password: TEST_PASSWORD });
    const storage = (await auditServices(running.client)).find((service) => service.name === 'storage')!;

    let message = '';
    const unlock = running.client.call('auth.unlock', { password: TEST_PASSWORD }).then(
      () => 'unlocked',
      (error: { code: string; message: string }) => {
        message = error.message;
        return error.code;
      },
    );
    // Auth counts the attempt before storage starts the derivation, which takes about 0.5 s.
    await waitFor(() => readFailures(running.profileDir) === 1, 10_000, 'auth to count the attempt');
    process.kill(storage.pid!, 'SIGKILL');

    const code = await unlock;
    expect(code).toMatch(/^(E_RUN_ABORTED|E_SERVICE_UNAVAILABLE)$/);
    if (code === 'E_RUN_ABORTED') expect(message).toMatch(/the attempt was counted toward the lockout/);
    expect(readFailures(running.profileDir)).toBe(1);
    await waitFor(async () => {
      const restarted = (await auditServices(running.client)).find((service) => service.name === 'storage')!;
      return restarted.state === 'running' && restarted.pid !== storage.pid;
    }, 30_000, 'storage to restart');

    const wrong = await expectCode(running.client.call('auth.unlock', { password: 'Wrong-Horse-42-battery' }), 'E_WRONG_PASSWORD');
    expect(wrong.attemptsLeft).toBe(3);
    await running.client.call('auth.unlock', { password: TEST_PASSWORD });
    expect(readFailures(running.profileDir)).toBe(0);
  });
});
