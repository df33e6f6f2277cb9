/**
 * The sealed store on real DuckDB, a real keyring and real files: round trips, recovery without
 * a clean close, compaction, rekey, and the refusal of every changed, cut, swapped, foreign or
 * older file with E_INTEGRITY naming it.
 */
import { appendFileSync, cpSync, readFileSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getBacktest, listBacktests, saveBacktest } from '../../../services/storage/backtests';
import { listSymbols, queryBars, replaceBars } from '../../../services/storage/bars';
import { Keyring } from '../../../services/storage/crypto';
import { Journal } from '../../../services/storage/sealed/journal';
import { COMMIT_COUNTER, FILE_COUNTER, journalName, snapshotName, type SealedStore } from '../../../services/storage/sealed/sealed-store';
import { writeSnapshot } from '../../../services/storage/sealed/snapshot';
import { TEST_OPTIONS, errorCodeOf, keyringPath } from '../crypto/helpers';
import { createStoreFixture, makeBars, newBacktest, PASSWORD, storeFiles, type StoreFixture } from './helpers';

async function integrityError(promise: Promise<SealedStore>): Promise<{ code: string; message: string; file?: unknown }> {
  try {
    const store = await promise;
    await store.close();
    return { code: 'resolved', message: '' };
  } catch (error) {
    const failure = error as { code?: string; message: string; details?: { file?: unknown } };
    return { code: failure.code ?? 'uncoded', message: failure.message, file: failure.details?.file };
  }
}

describe('sealed store', () => {
  let fixture: StoreFixture;
  beforeEach(async () => {
    fixture = await createStoreFixture();
  });
  afterEach(() => fixture.cleanup());

  test('new store seals snapshot and journal 1', async () => {
    const store = await fixture.open();
    expect(storeFiles(fixture)).toEqual([journalName(1), snapshotName(1)]);
    expect(fixture.keyring.counter(FILE_COUNTER)).toBe(1);
    expect(await listSymbols(store.database)).toEqual([]);
    await store.close();
    expect(readdirSync(fixture.ramDir)).toEqual([]);
  });

  test('data survives close and reopen', async () => {
    const store = await fixture.open();
    await replaceBars(store.database, 'SPY', makeBars(500));
    const { id } = await saveBacktest(store.database, newBacktest('SPY', 7));
    await store.close();
    expect(readdirSync(fixture.ramDir)).toEqual([]);
    // The clean close compacted: the journal of the new state contains no record.
    expect(fixture.keyring.counter(FILE_COUNTER)).toBe(2);

    const reopened = await fixture.open();
    const bars = await queryBars(reopened.database, 'SPY');
    expect(bars.close).toEqual(makeBars(500).close);
    const saved = await getBacktest(reopened.database, id);
    expect(saved.params).toEqual({ fast: 7 });
    expect(Array.from(saved.equity)).toEqual([100_000, 100_007]);
    await reopened.close();
  });

  test('journal replay without close', async () => {
    const store = await fixture.open();
    await replaceBars(store.database, 'QQQ', makeBars(300, 50));
    await saveBacktest(store.database, newBacktest('QQQ', 1));
    await saveBacktest(store.database, newBacktest('QQQ', 2));
    expect(fixture.keyring.counter(COMMIT_COUNTER)).toBe(3);
    // No close: a new process with its own RAM directory must rebuild everything from disk.
    const recovered = await fixture.open({ ramDir: fixture.newRamDir() });
    expect((await listBacktests(recovered.database, 10)).map((row) => row.params.fast)).toEqual([2, 1]);
    expect((await queryBars(recovered.database, 'QQQ')).close).toEqual(makeBars(300, 50).close);
    await recovered.close();
    await store.database.close();
  });

  test('small write leaves the snapshot alone', async () => {
    const store = await fixture.open();
    await replaceBars(store.database, 'SPY', makeBars(20_000));
    await store.compact();
    const snapshot = join(fixture.durableDir, snapshotName(2));
    const before = { size: statSync(snapshot).size, bytes: readFileSync(snapshot) };
    const journal = join(fixture.durableDir, journalName(2));
    const journalBefore = statSync(journal).size;

    await saveBacktest(store.database, newBacktest('SPY', 3));

    expect(readFileSync(snapshot).equals(before.bytes)).toBe(true);
    const added = statSync(journal).size - journalBefore;
    expect(added).toBeGreaterThan(0);
    expect(added).toBeLessThan(4_096);
    expect(added).toBeLessThan(before.size / 10);
    await store.close();
  });

  test('compaction starts past its threshold', async () => {
    const store = await fixture.open({ compactAfterBytes: 1 });
    for (let i = 1; i <= 4; i++) await replaceBars(store.database, `S${i}`, makeBars(20_000, i * 10));
    await store.close();
    expect(fixture.keyring.counter(FILE_COUNTER)).toBeGreaterThan(2);
    expect(storeFiles(fixture)).toHaveLength(2);

    const reopened = await fixture.open();
    expect((await listSymbols(reopened.database)).map((row) => row.symbol)).toEqual(['S1', 'S2', 'S3', 'S4']);
    await reopened.close();
  });

  test('rekey retires the old store key', async () => {
    const store = await fixture.open();
    await replaceBars(store.database, 'SPY', makeBars(100));
    const generation = await store.rekey();
    expect(generation).toBe(2);
    expect(fixture.keyring.generations('store')).toEqual([2]);
    await store.close();

    const reopened = await fixture.open();
    expect((await queryBars(reopened.database, 'SPY')).close.length).toBe(100);
    await reopened.close();
  });

  test('plaintext never reaches the durable files', async () => {
    const store = await fixture.open();
    const bars = makeBars(1_000, 4321.125);
    await replaceBars(store.database, 'CANARYSYM', bars);
    await saveBacktest(store.database, { ...newBacktest('CANARYSYM', 5), strategyFile: 'canary-strategy-name.js' });
    const durableBytes = storeFiles(fixture).map((name) => readFileSync(join(fixture.durableDir, name)));
    await store.close();
    durableBytes.push(...storeFiles(fixture).map((name) => readFileSync(join(fixture.durableDir, name))));

    const price = Buffer.alloc(8);
    price.writeDoubleLE(bars.close[17]);
    for (const bytes of durableBytes) {
      expect(bytes.includes('CANARYSYM')).toBe(false);
      expect(bytes.includes('canary-strategy-name')).toBe(false);
      expect(bytes.includes(price)).toBe(false);
      expect(bytes.includes(Buffer.from(fixture.keyring.currentKey('store').key))).toBe(false);
    }
  });
});

describe('sealed store tamper detection', () => {
  let fixture: StoreFixture;
  beforeEach(async () => {
    fixture = await createStoreFixture();
    // One compacted state (snapshot with data) plus a journal with two records.
    const store = await fixture.open();
    await replaceBars(store.database, 'SPY', makeBars(3_000));
    await store.compact();
    await saveBacktest(store.database, newBacktest('SPY', 1));
    await saveBacktest(store.database, newBacktest('SPY', 2));
    await store.database.close();
  });
  afterEach(() => fixture.cleanup());

  const current = (kind: 'snapshot' | 'journal'): string =>
    join(fixture.durableDir, kind === 'snapshot' ? snapshotName(2) : journalName(2));

  test('flipped byte anywhere is refused', async () => {
    for (const kind of ['snapshot', 'journal'] as const) {
      const file = current(kind);
      const original = readFileSync(file);
      const offsets = new Set([0, 9, 30, 50, 70, 100, 111, 112, 200, Math.floor(original.length / 2), original.length - 1]);
      for (const offset of offsets) {
        const changed = Buffer.from(original);
        changed[offset] ^= 0x01;
        writeFileSync(file, changed);
        const outcome = await integrityError(fixture.open({ ramDir: fixture.newRamDir() }));
        expect([kind, offset, outcome.code, outcome.file]).toEqual([kind, offset, 'E_INTEGRITY', kind === 'snapshot' ? snapshotName(2) : journalName(2)]);
      }
      writeFileSync(file, original);
    }
    expect(fixture.events.filter((event) => event.type === 'storage.integrity_failed').length).toBeGreaterThan(10);
    // The originals still open: nothing was lost to the refused attempts.
    const store = await fixture.open({ ramDir: fixture.newRamDir() });
    expect(await listBacktests(store.database, 10)).toHaveLength(2);
    await store.close();
  });

  test('truncated snapshot is refused', async () => {
    const file = current('snapshot');
    const size = statSync(file).size;
    for (const length of [0, 50, 112, 200, size - 17, size - 1]) {
      const original = readFileSync(file);
      truncateSync(file, length);
      const outcome = await integrityError(fixture.open({ ramDir: fixture.newRamDir() }));
      expect([length, outcome.code, outcome.file]).toEqual([length, 'E_INTEGRITY', snapshotName(2)]);
      writeFileSync(file, original);
    }
  });

  test('truncated journal losing acknowledged commits', async () => {
    const file = current('journal');
    const original = readFileSync(file);
    truncateSync(file, original.length - 10);
    const outcome = await integrityError(fixture.open({ ramDir: fixture.newRamDir() }));
    expect(outcome.code).toBe('E_INTEGRITY');
    expect(outcome.file).toBe(journalName(2));
    expect(outcome.message).toMatch(/keyring records 3 commits/);
  });

  test('torn unacknowledged record is cut off', async () => {
    const file = current('journal');
    const before = statSync(file).size;
    appendFileSync(file, Buffer.from([0, 0, 1, 0, 9, 9, 9]));
    const store = await fixture.open({ ramDir: fixture.newRamDir() });
    expect(await listBacktests(store.database, 10)).toHaveLength(2);
    expect(statSync(file).size).toBe(before);
    expect(fixture.events.map((event) => event.type)).toContain('storage.journal_tail_dropped');
    await store.close();
  });

  test('symlinked journal is refused', async () => {
    const journal = current('journal');
    const target = join(fixture.profileDir, 'elsewhere.sealed');
    renameSync(journal, target);
    const before = readFileSync(target);
    symlinkSync(target, journal);
    const outcome = await integrityError(fixture.open({ ramDir: fixture.newRamDir() }));
    expect(outcome.code).toBe('E_INTEGRITY');
    expect(outcome.file).toBe(journalName(2));
    expect(outcome.message).toMatch(/symbolic link/);
    expect(readFileSync(target).equals(before)).toBe(true);
  });

  test('swapped snapshot and journal are refused', async () => {
    const snapshot = current('snapshot');
    const journal = current('journal');
    renameSync(snapshot, `${snapshot}.swap`);
    renameSync(journal, snapshot);
    renameSync(`${snapshot}.swap`, journal);
    const outcome = await integrityError(fixture.open({ ramDir: fixture.newRamDir() }));
    expect(outcome.code).toBe('E_INTEGRITY');
    expect(outcome.file).toBe(snapshotName(2));
    expect(outcome.message).toMatch(/journal, expected a snapshot/);
  });

  test('older copy of the store is refused', async () => {
    const copy = `${fixture.durableDir}.old`;
    cpSync(fixture.durableDir, copy, { recursive: true });
    const store = await fixture.open({ ramDir: fixture.newRamDir() });
    await saveBacktest(store.database, newBacktest('SPY', 3));
    await store.database.close();

    rmSync(fixture.durableDir, { recursive: true });
    renameSync(copy, fixture.durableDir);
    const outcome = await integrityError(fixture.open({ ramDir: fixture.newRamDir() }));
    expect(outcome.code).toBe('E_INTEGRITY');
    expect(outcome.file).toBe(journalName(2));
    expect(outcome.message).toMatch(/contains commits up to 3, but the keyring records 4/);
  });

  test('older snapshot generation is refused', async () => {
    const copy = `${fixture.durableDir}.old`;
    cpSync(fixture.durableDir, copy, { recursive: true });
    const store = await fixture.open({ ramDir: fixture.newRamDir() });
    await store.close();
    // The current state is now 3; putting back the files of state 2 beside the keyring fails.
    rmSync(fixture.durableDir, { recursive: true });
    renameSync(copy, fixture.durableDir);
    const outcome = await integrityError(fixture.open({ ramDir: fixture.newRamDir() }));
    expect(outcome.code).toBe('E_INTEGRITY');
    expect(outcome.file).toBe(snapshotName(3));
    expect(outcome.message).toMatch(/missing/);
  });

  test('files from another profile are refused', async () => {
    const other = await createStoreFixture();
    try {
      const store = await other.open();
      await store.close();
      // Rename the other profile's current files to this profile's current names.
      const otherNumber = other.keyring.counter(FILE_COUNTER);
      cpSync(join(other.durableDir, snapshotName(otherNumber)), current('snapshot'));
      cpSync(join(other.durableDir, journalName(otherNumber)), current('journal'));
      const outcome = await integrityError(fixture.open({ ramDir: fixture.newRamDir() }));
      expect(outcome.code).toBe('E_INTEGRITY');
      expect(outcome.file).toBe(snapshotName(2));
      expect(outcome.message).toMatch(/another profile/);
    } finally {
      other.cleanup();
    }
  });

  test('keyring reopened with its password opens the store', async () => {
    fixture.keyring.lock();
    fixture.keyring = await Keyring.open(keyringPath(fixture.profileDir), PASSWORD, TEST_OPTIONS);
    const store = await fixture.open({ ramDir: fixture.newRamDir() });
    expect(await listBacktests(store.database, 10)).toHaveLength(2);
    await store.close();
    expect(await errorCodeOf(Keyring.open(keyringPath(fixture.profileDir), 'wrong password', TEST_OPTIONS))).toBe('E_WRONG_PASSWORD');
  });
});

describe('sealed store with keyring and store from different times', () => {
  let fixture: StoreFixture;
  beforeEach(async () => {
    fixture = await createStoreFixture();
  });
  afterEach(() => fixture.cleanup());

  /** Copies of the keyring file and the store directory, to put back later. */
  function saveCopies(label: string): { keyring: string; store: string } {
    const keyring = `${keyringPath(fixture.profileDir)}.${label}`;
    const store = `${fixture.durableDir}.${label}`;
    cpSync(keyringPath(fixture.profileDir), keyring);
    cpSync(fixture.durableDir, store, { recursive: true });
    return { keyring, store };
  }

  async function reopenKeyring(): Promise<void> {
    fixture.keyring.lock();
    fixture.keyring = await Keyring.open(keyringPath(fixture.profileDir), PASSWORD, TEST_OPTIONS);
  }

  /** Writes state 2, copies the keyring and store, then writes once more (state 3); returns the copies. */
  async function writeAfterCopy(): Promise<{ keyring: string; store: string }> {
    const store = await fixture.open();
    await replaceBars(store.database, 'SPY', makeBars(500));
    await store.close();
    const old = saveCopies('old');
    const again = await fixture.open({ ramDir: fixture.newRamDir() });
    await saveBacktest(again.database, newBacktest('SPY', 9));
    await again.close();
    return old;
  }

  test('older keyring touches no store file', async () => {
    const old = await writeAfterCopy();
    const current = saveCopies('current');
    const filesBefore = storeFiles(fixture);

    cpSync(old.keyring, keyringPath(fixture.profileDir));
    await reopenKeyring();
    const outcome = await integrityError(fixture.open({ ramDir: fixture.newRamDir() }));
    expect(outcome.code).toBe('E_INTEGRITY');
    expect(outcome.file).toBe(snapshotName(2));
    expect(outcome.message).toMatch(/store contains files numbered 3/);
    expect(storeFiles(fixture)).toEqual(filesBefore);

    // The current keyring still opens everything.
    cpSync(current.keyring, keyringPath(fixture.profileDir));
    await reopenKeyring();
    const reopened = await fixture.open({ ramDir: fixture.newRamDir() });
    expect(await listBacktests(reopened.database, 10)).toHaveLength(1);
    await reopened.close();
  });

  test('older store copy is not deleted', async () => {
    const old = await writeAfterCopy();

    rmSync(fixture.durableDir, { recursive: true });
    cpSync(old.store, fixture.durableDir, { recursive: true });
    const filesBefore = storeFiles(fixture);
    const outcome = await integrityError(fixture.open({ ramDir: fixture.newRamDir() }));
    expect(outcome.code).toBe('E_INTEGRITY');
    expect(outcome.file).toBe(snapshotName(3));
    expect(storeFiles(fixture)).toEqual(filesBefore);
  });

  test('torn journal of a compaction is removed', async () => {
    const store = await fixture.open();
    await replaceBars(store.database, 'SPY', makeBars(500));
    await store.compact();
    // A journal cut before its header was whole, as a crash while creating it leaves it.
    writeFileSync(join(fixture.durableDir, journalName(3)), Buffer.alloc(40));
    writeFileSync(join(fixture.durableDir, `${journalName(3)}.partial`), Buffer.alloc(0));
    await store.database.close();

    const reopened = await fixture.open({ ramDir: fixture.newRamDir() });
    expect(storeFiles(fixture)).toEqual([journalName(2), snapshotName(2)]);
    expect((await queryBars(reopened.database, 'SPY')).close.length).toBe(500);
    await reopened.close();
  });

  test('interrupted compaction files are removed', async () => {
    const store = await fixture.open();
    await replaceBars(store.database, 'SPY', makeBars(500));
    await store.compact();
    // What a compaction leaves when it is killed after writing files 3 and before switching.
    const last = store.lastCommit;
    await store.database.checkpointAndHold(() =>
      writeSnapshot(join(fixture.ramDir, 'storage.duckdb'), join(fixture.durableDir, snapshotName(3)), fixture.keyring, { fileNumber: 3, commitSequence: last }),
    );
    const leftover = await Journal.create(join(fixture.durableDir, journalName(3)), fixture.keyring, { fileNumber: 3, commitSequence: last });
    await leftover.close();
    await store.database.close();

    const reopened = await fixture.open({ ramDir: fixture.newRamDir() });
    expect(storeFiles(fixture)).toEqual([journalName(2), snapshotName(2)]);
    expect((await queryBars(reopened.database, 'SPY')).close.length).toBe(500);
    await reopened.close();
  });
});
