/**
 * Shared pieces of the sandbox tests: bar series, the real S&P 500 data, a real ServiceContext
 * and a helper to capture a BacktestrError's code.
 */
import { mkdtempSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { BacktestrError } from '../../protocol/errors';
import type { SecurityEvent, ServiceContext } from '../../services/runtime/types';
import { ORDER_KIND_QUANTITY, ORDER_KIND_TARGET_PERCENT, type Bars, type StrategyOrder } from '../../services/sandbox/types';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const SP500_CSV = path.join(REPO_ROOT, 'node_modules', 'vega-datasets', 'data', 'sp500-2000.csv');
export const SMA_SOURCE = readFileSync(path.join(REPO_ROOT, 'examples', 'sma-crossover.ts'), 'utf8');

const DAY_MS = 86_400_000;

/** Parses the vega-datasets S&P 500 CSV (date,open,high,low,close,adjclose,volume). */
export function readSp500Bars(): Bars {
  const lines = readFileSync(SP500_CSV, 'utf8').trim().split(/\r?\n/);
  const header = lines[0].split(',');
  const index = (name: string): number => {
    const position = header.indexOf(name);
    if (position < 0) throw new Error(`column ${name} missing in ${SP500_CSV}`);
    return position;
  };
  const rows = lines.slice(1).map((line) => line.split(','));
  const column = (name: string): Float64Array => Float64Array.from(rows, (fields) => Number(fields[index(name)]));
  return {
    time: Float64Array.from(rows, (fields) => Date.parse(`${fields[index('date')]}T00:00:00Z`)),
    open: column('open'),
    high: column('high'),
    low: column('low'),
    close: column('close'),
    volume: column('volume'),
  };
}

/** Daily bars from explicit opens and closes; high and low bracket them, dates from 2021-01-04. */
export function barsFrom(opens: readonly number[], closes: readonly number[]): Bars {
  const start = Date.UTC(2021, 0, 4);
  return {
    time: Float64Array.from(opens, (_, i) => start + i * DAY_MS),
    open: Float64Array.from(opens),
    high: Float64Array.from(opens, (open, i) => Math.max(open, closes[i]) + 1),
    low: Float64Array.from(opens, (open, i) => Math.min(open, closes[i]) - 1),
    close: Float64Array.from(closes),
    volume: Float64Array.from(opens, () => 1000),
  };
}

/** A smooth synthetic series of `count` bars. */
export function syntheticBars(count: number): Bars {
  const closes = Array.from({ length: count }, (_, i) => 100 + 10 * Math.sin(i / 15) + i * 0.01);
  const opens = closes.map((close, i) => (i === 0 ? close : closes[i - 1] + 0.1));
  return barsFrom(opens, closes);
}

export interface SandboxTestContext {
  ctx: ServiceContext;
  events: SecurityEvent[];
  logFile: string;
}

/** A real ServiceContext: pino to a file in a temporary profile, events recorded in memory. */
export function createSandboxContext(): SandboxTestContext {
  const profileDir = mkdtempSync(path.join(tmpdir(), 'backtestr-sandbox-'));
  const stateDir = path.join(profileDir, 'sandbox');
  mkdirSync(stateDir, { mode: 0o700 });
  const logFile = path.join(profileDir, 'sandbox-test.log');
  const events: SecurityEvent[] = [];
  const calls: { method: string; params: unknown }[] = [];
  const ctx: ServiceContext = {
    service: 'sandbox',
    profileDir,
    stateDir,
    installDir: path.join(REPO_ROOT, 'build'),
    log: pino({ base: { service: 'sandbox' } }, pino.destination({ dest: logFile, sync: true })),
    async call(method, params) {
      calls.push({ method, params });
      return null;
    },
    securityEvent(event) {
      events.push(event);
    },
  };
  return { ctx, events, logFile };
}

/** Awaits `promise`, expects it to reject with a BacktestrError, and returns that error. */
export async function rejection(promise: Promise<unknown>): Promise<BacktestrError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof BacktestrError) return error;
    throw new Error(`expected a BacktestrError, got ${String(error)}`);
  }
  throw new Error('expected the promise to reject, but it resolved');
}

/** Runs `action` and returns the error it threw, or null when it returned. */
export function thrown(action: () => unknown): BacktestrError | null {
  try {
    action();
  } catch (error) {
    return error as BacktestrError;
  }
  return null;
}

/** Runs `action`, which must throw, and returns the error it threw. */
export function errorOf(action: () => unknown): BacktestrError {
  const error = thrown(action);
  if (error === null) throw new Error('expected an error');
  return error;
}

/** Packs orders into the runner's triples of bar, kind and value. */
export function packOrders(orders: readonly StrategyOrder[]): Float64Array {
  const packed = new Float64Array(orders.length * 3);
  orders.forEach((order, k) => {
    packed[k * 3] = order.bar;
    packed[k * 3 + 1] = order.kind === 'quantity' ? ORDER_KIND_QUANTITY : ORDER_KIND_TARGET_PERCENT;
    packed[k * 3 + 2] = order.value;
  });
  return packed;
}
