/**
 * kill -9 of a process writing to the sealed store, at random moments, round after round on one
 * profile: afterwards every acknowledged write is present and whole, an unacknowledged one is
 * either whole or absent, and the store opens. The child loads the compiled build (run
 * `npm run build` first). Compaction is set low so that kills also land inside compactions.
 */
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import { getBacktest, listBacktests } from '../../../services/storage/backtests';
import { listSymbols, queryBars } from '../../../services/storage/bars';
import { Keyring } from '../../../services/storage/crypto';
import { TEST_OPTIONS, keyringPath } from '../crypto/helpers';
import { createStoreFixture, PASSWORD, type StoreFixture } from './helpers';

const ROUNDS = 6;

interface Acked {
  imports: Map<string, number>;
  backtests: Map<number, number>;
}

function runUntilKilled(fixture: StoreFixture, round: number, killAfterMs: number, rekey = false): Promise<{ stdout: string; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(__dirname, 'crash-child.js')], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timerSet = false;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.startsWith('ready\n') && !timerSet) {
        timerSet = true;
        setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (_code, signal) => resolve({ stdout, signal, stderr }));
    child.stdin.end(JSON.stringify({ profileDir: fixture.profileDir, ramDir: fixture.newRamDir(), password: PASSWORD, round, compactAfterBytes: 256 * 1024, rekey }));
  });
}

/** Opens the store in this process and returns its content in comparable form, then locks again. */
async function snapshotOf(fixture: StoreFixture): Promise<{ symbols: [string, number][]; backtests: number[] }> {
  fixture.keyring = await Keyring.open(keyringPath(fixture.profileDir), PASSWORD, TEST_OPTIONS);
  const store = await fixture.open({ ramDir: fixture.newRamDir() });
  const symbols = (await listSymbols(store.database)).map((row): [string, number] => [row.symbol, row.bars]);
  const backtests = (await listBacktests(store.database, 1_000)).map((row) => row.id);
  await store.close();
  // The generation the files use and at most one newer, unused one left by an interrupted rekey.
  expect(fixture.keyring.generations('store').length).toBeLessThanOrEqual(2);
  fixture.keyring.lock();
  return { symbols, backtests };
}

describe('sealed store crash safety', () => {
  let fixture: StoreFixture;
  beforeAll(async () => {
    fixture = await createStoreFixture();
    // The child opens the keyring itself; this process's copy must not write it meanwhile.
    fixture.keyring.lock();
  });
  afterAll(() => fixture.cleanup());

  test('kill -9 during writes loses no acknowledged write', async () => {
    const acked: Acked = { imports: new Map(), backtests: new Map() };
    for (let round = 1; round <= ROUNDS; round++) {
      const outcome = await runUntilKilled(fixture, round, randomInt(100, 900));
      expect([round, outcome.signal, outcome.stderr]).toEqual([round, 'SIGKILL', '']);
      for (const line of outcome.stdout.split('\n')) {
        const [word, kind, key, value] = line.split(' ');
        if (word !== 'acked') continue;
        if (kind === 'import') acked.imports.set(key, Number(value));
        else acked.backtests.set(Number(key), Number(value));
      }

      // Open in this process, check, then lock again so the next child owns the keyring.
      fixture.keyring = await Keyring.open(keyringPath(fixture.profileDir), PASSWORD, TEST_OPTIONS);
      const store = await fixture.open({ ramDir: fixture.newRamDir() });

      const symbols = new Map((await listSymbols(store.database)).map((row) => [row.symbol, row.bars]));
      for (const [symbol, count] of acked.imports) {
        expect([round, symbol, symbols.get(symbol)]).toEqual([round, symbol, count]);
      }
      // Whatever is visible is whole: each symbol's bar count matches its summary row.
      for (const [symbol, count] of symbols) {
        expect([symbol, (await queryBars(store.database, symbol)).close.length]).toEqual([symbol, count]);
      }
      const stored = await listBacktests(store.database, 1_000);
      const storedIds = new Set(stored.map((row) => row.id));
      for (const [id, marker] of acked.backtests) {
        expect([round, id, storedIds.has(id)]).toEqual([round, id, true]);
        const record = await getBacktest(store.database, id);
        expect([id, record.params.marker, record.equity.length, record.fills.length]).toEqual([id, marker, 500, 1]);
      }
      for (const row of stored) {
        const record = await getBacktest(store.database, row.id);
        expect([row.id, record.equity.length]).toEqual([row.id, 500]);
      }

      await store.close();
      fixture.keyring.lock();
    }
    expect(acked.backtests.size).toBeGreaterThan(ROUNDS);
    expect(acked.imports.size).toBeGreaterThan(ROUNDS / 2);

    // Then rekeys killed at random moments: the data stays readable under whichever key won.
    const before = await snapshotOf(fixture);
    let rekeys = 0;
    for (let round = 1; round <= 4; round++) {
      const outcome = await runUntilKilled(fixture, 100 + round, randomInt(50, 600), true);
      expect([round, outcome.signal, outcome.stderr]).toEqual([round, 'SIGKILL', '']);
      rekeys += outcome.stdout.split('\n').filter((line) => line.startsWith('rekeyed ')).length;
      expect([round, await snapshotOf(fixture)]).toEqual([round, before]);
    }
    expect(rekeys).toBeGreaterThan(0);
  }, 240_000);
});
