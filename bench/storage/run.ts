/**
 * `npm run bench` (storage part): the sealed store against plain DuckDB on disk, side by side in
 * one run, on a store of 10 symbols x 1,000,000 daily bars (BENCH_STORE_BARS changes the bars per
 * symbol). Both sides run the same storage code (replaceBars, queryBars, saveBacktest). The
 * plain side is StorageDatabase on a database file in a disk directory with DuckDB's own
 * write-ahead log. The sealed side is SealedStore with its plaintext on /dev/shm.
 *
 * Figures: bulk import throughput, unlock-to-ready time, query times, small-write latency.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { listBacktests, saveBacktest } from '../../services/storage/backtests';
import { queryBars, replaceBars } from '../../services/storage/bars';
import { Keyring } from '../../services/storage/crypto';
import { StorageDatabase } from '../../services/storage/database';
import { migrateSchema } from '../../services/storage/schema';
import { SealedStore } from '../../services/storage/sealed/sealed-store';
import { median, percentile } from '../stats';

const SYMBOLS = 10;
const BARS_PER_SYMBOL = Number(process.env.BENCH_STORE_BARS ?? 1_000_000);
const OPEN_REPETITIONS = 3;
const QUERY_REPETITIONS = 11;
const SMALL_WRITES = 40;
const PASSWORD = 'benchmark password, not a secret';
const log = pino({ level: 'silent' });

function row(label: string, value: string, baseline: string, ratio: string): string {
  return `${label.padEnd(52)} ${value.padStart(12)} ${baseline.padStart(12)} ${ratio.padStart(8)}`;
}

function ratioRow(label: string, sealed: number, plain: number, digits = 1): string {
  return row(label, sealed.toFixed(digits), plain.toFixed(digits), (sealed / plain).toFixed(2));
}

function syntheticBars(count: number, seed: number) {
  const days = new Int32Array(count);
  const open = new Float64Array(count);
  const high = new Float64Array(count);
  const low = new Float64Array(count);
  const close = new Float64Array(count);
  const volume = new Float64Array(count);
  let price = 100 + seed;
  for (let i = 0; i < count; i++) {
    days[i] = -700_000 + i;
    price *= 1 + Math.sin(i * 0.013 + seed) * 0.01;
    open[i] = price;
    high[i] = price * 1.01;
    low[i] = price * 0.99;
    close[i] = price * (1 + Math.cos(i * 0.07) * 0.002);
    volume[i] = 1_000_000 + (i % 1000);
  }
  return { count, days, open, high, low, close, volume };
}

function smallBacktest(marker: number) {
  const points = 2_520;
  return {
    strategyFile: 'sma.ts',
    strategySha256: 'c'.repeat(64),
    symbol: 'S0',
    params: { fast: 50, slow: 200, marker },
    options: {},
    metrics: { sharpe: 1.1, final_equity: 123_456 },
    fills: Array.from({ length: 40 }, (_, i) => ({ bar: i * 60, time: i * 86_400_000, side: i % 2 === 0 ? ('buy' as const) : ('sell' as const), qty: 10, price: 100 + i, commission: 1 })),
    equity: new Float64Array(points).map((_, i) => 100_000 + i),
    time: new Float64Array(points).map((_, i) => i * 86_400_000),
  };
}

async function elapsedMs<T>(work: () => Promise<T>): Promise<[number, T]> {
  const start = performance.now();
  const value = await work();
  return [performance.now() - start, value];
}

function directoryBytes(dir: string): number {
  return readdirSync(dir).reduce((sum, name) => sum + statSync(path.join(dir, name)).size, 0);
}

async function openPlain(dir: string): Promise<StorageDatabase> {
  const database = await StorageDatabase.open(dir, log);
  await migrateSchema(database);
  return database;
}

async function main(): Promise<void> {
  const diskRoot = mkdtempSync(path.join(os.tmpdir(), 'backtestr-bench-store-'));
  const ramRoot = mkdtempSync('/dev/shm/backtestr-bench-');
  const plainDir = path.join(diskRoot, 'plain');
  const profileDir = path.join(diskRoot, 'profile');
  const ramDirs: string[] = [];
  const newRamDir = (): string => {
    const dir = mkdtempSync(path.join(ramRoot, 'ram-'));
    ramDirs.push(dir);
    return dir;
  };
  mkdirSync(plainDir, { mode: 0o700 });
  mkdirSync(profileDir, { mode: 0o700 });

  try {
    console.log(`Sealed store vs plain DuckDB, ${SYMBOLS} x ${BARS_PER_SYMBOL.toLocaleString('en-US')} bars, Node ${process.version}, ${os.cpus().length} cores`);
    console.log(row('figure', 'sealed', 'plain', 'ratio'));

    const [createMs, keyring] = await elapsedMs(() => Keyring.create(path.join(profileDir, 'keyring.bin'), PASSWORD, { purposes: ['store', 'vault'] }));
    const kdf = keyring.kdfParams;
    console.log(row(`keyring create incl. Argon2id calibration (ms)`, createMs.toFixed(0), '-', '-'));
    const storeOptions = { durableDir: path.join(profileDir, 'store'), keyring, log, securityEvent: () => undefined };

    let sealed = await SealedStore.open({ ...storeOptions, ramDir: newRamDir() });
    let plain = await openPlain(plainDir);

    // Bulk import, interleaved so that drifting load affects both sides alike.
    let sealedImportMs = 0;
    let plainImportMs = 0;
    for (let symbol = 0; symbol < SYMBOLS; symbol++) {
      const bars = syntheticBars(BARS_PER_SYMBOL, symbol);
      const order = symbol % 2 === 0 ? ['sealed', 'plain'] : ['plain', 'sealed'];
      for (const side of order) {
        if (side === 'sealed') sealedImportMs += (await elapsedMs(() => replaceBars(sealed.database, `S${symbol}`, bars)))[0];
        else plainImportMs += (await elapsedMs(() => replaceBars(plain, `S${symbol}`, bars)))[0];
      }
    }
    const totalBars = SYMBOLS * BARS_PER_SYMBOL;
    console.log(ratioRow('bulk import, bars per second (millions)', totalBars / sealedImportMs / 1000, totalBars / plainImportMs / 1000, 2));

    const [closeSealedMs] = await elapsedMs(() => sealed.close());
    const [closePlainMs] = await elapsedMs(() => plain.close());
    console.log(ratioRow('lock: compact and close vs CHECKPOINT and close (ms)', closeSealedMs, closePlainMs, 0));
    console.log(row('bytes on disk (MB)', (directoryBytes(storeOptions.durableDir) / 1e6).toFixed(1), (directoryBytes(plainDir) / 1e6).toFixed(1), '-'));

    // Unlock to ready: from opening the store to the result of its first query.
    const sealedOpens: number[] = [];
    const plainOpens: number[] = [];
    for (let i = 0; i < OPEN_REPETITIONS; i++) {
      const [sealedMs, store] = await elapsedMs(async () => {
        const opened = await SealedStore.open({ ...storeOptions, ramDir: newRamDir() });
        await listBacktests(opened.database, 1);
        return opened;
      });
      sealedOpens.push(sealedMs);
      const [plainMs, database] = await elapsedMs(async () => {
        const opened = await openPlain(plainDir);
        await listBacktests(opened, 1);
        return opened;
      });
      plainOpens.push(plainMs);
      if (i < OPEN_REPETITIONS - 1) {
        await store.close();
        await database.close();
      } else {
        sealed = store;
        plain = database;
      }
    }
    console.log(ratioRow('unlock to ready, keyring already open (ms)', median(sealedOpens), median(plainOpens), 0));
    keyring.lock();
    const [keyringOpenMs, reopened] = await elapsedMs(() => Keyring.open(path.join(profileDir, 'keyring.bin'), PASSWORD));
    console.log(row(`keyring open, Argon2id m=${kdf.memoryKiB} KiB t=${kdf.timeCost} (ms)`, keyringOpenMs.toFixed(0), '-', '-'));
    await sealed.database.close();
    sealed = await SealedStore.open({ ...storeOptions, keyring: reopened, ramDir: newRamDir() });

    // Queries: one symbol's bars as columns, and an aggregate over every bar.
    const aggregate = `SELECT symbol, avg(close) AS mean, max(high) AS top, count(*) AS n FROM bars GROUP BY symbol ORDER BY symbol`;
    const queries: Record<string, { sealed: number[]; plain: number[] }> = { bars: { sealed: [], plain: [] }, aggregate: { sealed: [], plain: [] } };
    for (let i = 0; i < QUERY_REPETITIONS; i++) {
      // Alternating which side goes first, so that neither always runs on a warmer CPU cache.
      const sides = i % 2 === 0 ? (['sealed', 'plain'] as const) : (['plain', 'sealed'] as const);
      for (const side of sides) {
        const database = side === 'sealed' ? sealed.database : plain;
        queries.bars[side].push((await elapsedMs(() => queryBars(database, 'S5')))[0]);
        queries.aggregate[side].push((await elapsedMs(() => database.run('bench', (session) => session.selectRows(aggregate))))[0]);
      }
    }
    console.log(ratioRow(`query one symbol's ${BARS_PER_SYMBOL.toLocaleString('en-US')} bars (ms)`, median(queries.bars.sealed), median(queries.bars.plain)));
    console.log(ratioRow(`aggregate over all ${totalBars.toLocaleString('en-US')} bars (ms)`, median(queries.aggregate.sealed), median(queries.aggregate.plain)));

    // Small writes: one backtest with 2,520 equity points and 40 fills, acknowledged durably.
    const sealedWrites: number[] = [];
    const plainWrites: number[] = [];
    for (let i = 0; i < SMALL_WRITES; i++) {
      sealedWrites.push((await elapsedMs(() => saveBacktest(sealed.database, smallBacktest(i))))[0]);
      plainWrites.push((await elapsedMs(() => saveBacktest(plain, smallBacktest(i))))[0]);
    }
    const sortedSealed = [...sealedWrites].sort((a, b) => a - b);
    const sortedPlain = [...plainWrites].sort((a, b) => a - b);
    console.log(ratioRow('small write (one backtest) p50 (ms)', percentile(sortedSealed, 0.5), percentile(sortedPlain, 0.5), 2));
    console.log(ratioRow('small write (one backtest) p99 (ms)', percentile(sortedSealed, 0.99), percentile(sortedPlain, 0.99), 2));

    await sealed.close();
    await plain.close();
    reopened.lock();
  } finally {
    rmSync(diskRoot, { recursive: true, force: true });
    rmSync(ramRoot, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
