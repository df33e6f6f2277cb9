/**
 * Shared harness of the abuse corpus: a real sandbox service on one worker thread, a helper that
 * runs one hostile strategy and checks its exact outcome, and the healthy run that proves the
 * service still works afterwards.
 */
import { parse } from '../../../protocol/schema';
import type { ErrorCode, ErrorDetails } from '../../../protocol/errors';
import { createSandboxService, runParamsSchema } from '../../../services/sandbox/service';
import type { BacktestOptions, BacktestResult, Bars } from '../../../services/sandbox/types';
import { createSandboxContext, rejection, syntheticBars } from '../fixtures';

export const FILENAME = 'hostile.js';
export const BAR_COUNT = 40;
export const CASH = 100_000;

/** Buys one unit on bar 0, so it fills at bar 1's open and is held to the end. */
export const HEALTHY_SOURCE = 'function onBar(ctx) { if (ctx.bar.index === 0) ctx.buy(1); }';

/** The expected outcome of one hostile run: an error with exact details, or a result. */
export type Outcome =
  | { code: ErrorCode; details: ErrorDetails }
  | { logs: readonly string[]; fills?: number };

export interface AbuseCase {
  name: string;
  source: string;
  options?: BacktestOptions;
  expected: Outcome;
}

export interface AbuseSandbox {
  bars: Bars;
  run(source: string, options?: BacktestOptions): Promise<BacktestResult>;
  expectOutcome(source: string, expected: Outcome, options?: BacktestOptions): Promise<void>;
  /** Runs HEALTHY_SOURCE and checks its one fill and final equity to the last bit. */
  expectServiceWorks(): Promise<void>;
}

/**
 * Starts one sandbox service for the calling test file and stops it afterwards. One thread, so
 * every healthy run lands on the thread whose isolate the hostile run just used.
 */
export function useAbuseSandbox(): AbuseSandbox {
  const bars = syntheticBars(BAR_COUNT);
  const { ctx } = createSandboxContext();
  const service = createSandboxService({ threads: 1 });

  beforeAll(async () => {
    await service.start!(ctx);
  });

  afterAll(async () => {
    await service.stop!(ctx);
  });

  const run = (source: string, options: BacktestOptions = {}): Promise<BacktestResult> =>
    service.methods.run.handle(parse(runParamsSchema, { source, filename: FILENAME, bars, params: { level: 2 }, options }, 'params'), ctx) as Promise<BacktestResult>;

  async function expectOutcome(source: string, expected: Outcome, options: BacktestOptions = {}): Promise<void> {
    if ('code' in expected) {
      const error = await rejection(run(source, options));
      expect(error.code).toBe(expected.code);
      expect(error.details).toEqual(expected.details);
      return;
    }
    const result = await run(source, options);
    expect(result.logs).toEqual(expected.logs);
    if (expected.fills !== undefined) expect(result.fills).toHaveLength(expected.fills);
    expectPlainResult(result);
  }

  async function expectServiceWorks(): Promise<void> {
    const result = await run(HEALTHY_SOURCE);
    expect(result.fills).toEqual([{ bar: 1, time: bars.time[1], side: 'buy', qty: 1, price: bars.open[1], commission: 0 }]);
    expect(result.metrics.final_equity).toBe(CASH - bars.open[1] + bars.close[BAR_COUNT - 1]);
    expect(result.logs).toEqual([]);
  }

  return { bars, run, expectOutcome, expectServiceWorks };
}

/**
 * Checks that a result is plain data: no extra keys, a plain array of strings and a Float64Array.
 * The checks do not compare prototypes, because results cross from the worker thread into the
 * main realm, while jest runs this file in a realm of its own.
 */
export function expectPlainResult(result: BacktestResult): void {
  expect(Object.keys(result).sort()).toEqual(['bars', 'equity', 'fills', 'logs', 'metrics']);
  expect(Array.isArray(result.logs)).toBe(true);
  expect(Object.keys(result.logs)).toHaveLength(result.logs.length);
  expect(Object.prototype.toString.call(result.equity)).toBe('[object Float64Array]');
  for (const line of result.logs) expect(typeof line).toBe('string');
  for (const value of Object.values(result.metrics)) expect(Number.isFinite(value)).toBe(true);
}

/** Runs every case of `cases` as its own test, each followed by a healthy run. */
export function describeCases(sandbox: AbuseSandbox, cases: readonly AbuseCase[]): void {
  test.each(cases.map((abuseCase) => [abuseCase.name, abuseCase] as const))('%s', async (_name, abuseCase) => {
    await sandbox.expectOutcome(abuseCase.source, abuseCase.expected, abuseCase.options);
    await sandbox.expectServiceWorks();
  });
}

/** A time limit short enough for the corpus, with the CPU limit far above it. */
export const SHORT_WALL_CLOCK: BacktestOptions = { timeoutMs: 300, cpuTimeMs: 10_000 };

/** A CPU limit short enough for the corpus, with the wall-clock limit far above it. */
export const SHORT_CPU: BacktestOptions = { timeoutMs: 5_000, cpuTimeMs: 300 };

export const SMALL_MEMORY: BacktestOptions = { memoryLimitMb: 32 };

export const timeLimitAt = (bar?: number): Outcome => ({
  code: 'E_LIMIT_TIME',
  details: bar === undefined ? { limit: 'timeoutMs', value: 300 } : { limit: 'timeoutMs', value: 300, bar },
});

/** The runtime error of a throw at `bar` whose thrown value gives no position in the file. */
export const runtimeErrorAt = (bar: number): Outcome => ({ code: 'E_STRATEGY_RUNTIME', details: { file: FILENAME, phase: 'bar', bar } });
