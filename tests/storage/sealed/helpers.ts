/** A keyring, a RAM directory and a sealed store per test, with the fast test KDF. */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import type { Keyring } from '../../../services/storage/crypto';
import { SealedStore, type SealedStoreOptions } from '../../../services/storage/sealed/sealed-store';
import type { SecurityEvent } from '../../../services/runtime/types';
import { createTestKeyring, makeTempDir, removeDir } from '../crypto/helpers';

export const PASSWORD = 'correct horse battery staple';

export interface StoreFixture {
  profileDir: string;
  durableDir: string;
  ramDir: string;
  keyring: Keyring;
  events: SecurityEvent[];
  options(overrides?: Partial<SealedStoreOptions>): SealedStoreOptions;
  open(overrides?: Partial<SealedStoreOptions>): Promise<SealedStore>;
  /** A fresh RAM directory, as a new process after a crash would get. */
  newRamDir(): string;
  cleanup(): void;
}

export async function createStoreFixture(): Promise<StoreFixture> {
  const profileDir = makeTempDir();
  const keyring = await createTestKeyring(profileDir, PASSWORD);
  const ramDirs: string[] = [];
  const newRamDir = (): string => {
    const dir = mkdtempSync('/dev/shm/backtestr-test-');
    ramDirs.push(dir);
    return dir;
  };
  const fixture: StoreFixture = {
    profileDir,
    durableDir: join(profileDir, 'store'),
    ramDir: newRamDir(),
    keyring,
    events: [],
    options: (overrides = {}) => ({
      durableDir: fixture.durableDir,
      ramDir: fixture.ramDir,
      keyring: fixture.keyring,
      log: pino({ level: 'silent' }),
      securityEvent: (event) => fixture.events.push(event),
      ...overrides,
    }),
    open: (overrides = {}) => SealedStore.open(fixture.options(overrides)),
    newRamDir,
    cleanup: () => {
      if (!fixture.keyring.locked) fixture.keyring.lock();
      removeDir(profileDir);
      for (const dir of ramDirs) rmSync(dir, { recursive: true, force: true });
    },
  };
  return fixture;
}

export function storeFiles(fixture: StoreFixture): string[] {
  return readdirSync(fixture.durableDir).sort();
}

/** `count` daily bars from 2000-01-03 whose closes follow a fixed pattern around `base`. */
export function makeBars(count: number, base = 100) {
  const days = new Int32Array(count);
  const close = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    days[i] = 10_959 + i;
    close[i] = base + ((i * 7919) % 1000) / 100;
  }
  return { count, days, open: close.slice(), high: close.map((value) => value + 1), low: close.map((value) => value - 1), close, volume: close.map(() => 1_000) };
}

export function newBacktest(symbol: string, marker: number) {
  return {
    strategyFile: `strategy-${marker}.js`,
    strategySha256: 'a'.repeat(64),
    symbol,
    params: { fast: marker },
    options: {},
    metrics: { sharpe: marker / 10 },
    fills: [{ bar: 1, time: 946_857_600_000, side: 'buy' as const, qty: 10, price: 100.5, commission: 1 }],
    equity: new Float64Array([100_000, 100_000 + marker]),
    time: new Float64Array([946_857_600_000, 946_944_000_000]),
  };
}
