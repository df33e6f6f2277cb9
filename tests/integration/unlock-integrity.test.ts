/**
 * A damaged profile file with the right password: unlock fails with E_INTEGRITY naming the file,
 * a critical event is recorded, the attempts do not count toward the lockout, and the profile
 * unlocks with all its data once the file is restored.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expectCode, SP500_CSV, startKernel, TEST_PASSWORD, waitFor, type RunningKernel } from '../support/harness';

describe('unlock with a damaged profile file', () => {
  let running: RunningKernel;

  beforeAll(async () => {
    running = await startKernel();
    await running.client.call('auth.createProfile', { password: TEST_PASSWORD });
    const { session } = await running.client.call<{ session: string }>('auth.unlock', { password: TEST_PASSWORD });
    await running.client.call('storage.importBars', { symbol: 'SPX', csv: fs.readFileSync(SP500_CSV) });
    await running.client.call('auth.lock', { session });
  });

  afterAll(async () => {
    await running.stop();
    fs.rmSync(running.profileDir, { recursive: true, force: true });
  });

  test('integrity failures do not lock out', async () => {
    const storeDir = path.join(running.profileDir, 'data', 'store');
    const snapshot = fs.readdirSync(storeDir).find((name) => name.startsWith('snapshot-'))!;
    const file = path.join(storeDir, snapshot);
    const original = fs.readFileSync(file);
    const changed = Buffer.from(original);
    changed[changed.length - 5] ^= 0x01;
    fs.writeFileSync(file, changed);

    // More attempts than the lockout allows: none of them may count as a wrong password.
    for (let attempt = 1; attempt <= 7; attempt++) {
      const details = await expectCode(running.client.call('auth.unlock', { password: TEST_PASSWORD }), 'E_INTEGRITY');
      expect([attempt, details.file]).toEqual([attempt, snapshot]);
    }
    const status = await running.client.call<{ lockedOut: boolean }>('auth.status', {});
    expect(status.lockedOut).toBe(false);
    const log = path.join(running.profileDir, 'logs', 'security.log');
    await waitFor(() => fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes('storage.integrity_failed'), 10_000, 'the integrity event');

    fs.writeFileSync(file, original);
    await running.client.call('auth.unlock', { password: TEST_PASSWORD });
    const symbols = await running.client.call<{ symbol: string; bars: number }[]>('storage.listSymbols', {});
    expect(symbols).toEqual([{ symbol: 'SPX', bars: 5105, first: '2000-01-03', last: '2020-04-17' }]);
  });
});
