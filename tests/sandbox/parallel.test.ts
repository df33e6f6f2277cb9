/**
 * Parallel runs and determinism: a batch of 8 backtests on a 2-thread pool gives the same
 * results, bit for bit, as the same backtests run one by one, and as the in-thread runner.
 * Several strategies draw from Math.random and read the clock, which are seeded from the run's
 * inputs and set to bar time.
 */
import { parse } from '../../protocol/schema';
import { runBacktest } from '../../services/sandbox/backtest';
import { createSandboxService, runParamsSchema } from '../../services/sandbox/service';
import type { BacktestRequest, BacktestResult } from '../../services/sandbox/types';
import { createSandboxContext, SMA_SOURCE, syntheticBars } from './fixtures';

const RANDOM_TRADER = `
function onBar(ctx) {
  const draw = Math.random();
  if (draw < ctx.params.buyBelow) ctx.targetPercent(Math.random());
  else if (draw > 0.9) ctx.targetPercent(0);
  if (ctx.bar.index % 97 === 0) ctx.log(draw, Date.now() === ctx.bar.time, new Date().toISOString());
}`;

const INDICATOR_MIX = `
function onBar(ctx) {
  const p = ctx.params.period;
  const score = ctx.rsi(p) / 100 + ctx.stddev(p) / ctx.close() - ctx.atr(p) / ctx.close();
  const band = ctx.highest(p, 'high') - ctx.lowest(p, 'low');
  if (score > 0.55 && band > 0) ctx.buy(1 + (ctx.bar.index % 3));
  else if (score < 0.45) ctx.sell(2);
  if (ctx.bar.index === 1500) ctx.log(ctx.ema(p), score, band);
}`;

const BARS = syntheticBars(2_000);

const REQUESTS: BacktestRequest[] = [
  { source: SMA_SOURCE, filename: 'sma-crossover.ts', bars: BARS, params: { fast: 10, slow: 40 } },
  { source: SMA_SOURCE, filename: 'sma-crossover.ts', bars: BARS, params: { fast: 20, slow: 100 } },
  { source: RANDOM_TRADER, filename: 'random.js', bars: BARS, params: { buyBelow: 0.1 } },
  { source: RANDOM_TRADER, filename: 'random.js', bars: BARS, params: { buyBelow: 0.2 } },
  { source: RANDOM_TRADER, filename: 'random.js', bars: BARS, params: { buyBelow: 0.1 }, options: { commission: 0.001 } },
  { source: INDICATOR_MIX, filename: 'mix.js', bars: BARS, params: { period: 14 } },
  { source: INDICATOR_MIX, filename: 'mix.js', bars: BARS, params: { period: 30 }, options: { cash: 5_000 } },
  { source: RANDOM_TRADER, filename: 'random.js', bars: BARS, params: { buyBelow: 0.3 } },
];

function sameBytes(a: Float64Array, b: Float64Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function expectIdentical(actual: BacktestResult, expected: BacktestResult): void {
  expect(sameBytes(actual.equity, expected.equity)).toBe(true);
  expect(actual.metrics).toEqual(expected.metrics);
  expect(actual.fills).toEqual(expected.fills);
  expect(actual.logs).toEqual(expected.logs);
  expect(actual.bars).toBe(expected.bars);
}

describe('sandbox parallel runs', () => {
  const { ctx, events } = createSandboxContext();
  const service = createSandboxService({ threads: 2 });
  // Every call parses its own copy, as the service runtime does, because the run moves its bars.
  const run = (request: BacktestRequest): Promise<BacktestResult> =>
    service.methods.run.handle(parse(runParamsSchema, request, 'params'), ctx) as Promise<BacktestResult>;

  beforeAll(async () => {
    await service.start!(ctx);
  });

  afterAll(async () => {
    await service.stop!(ctx);
  });

  test('batch of 8 equals one by one', async () => {
    const oneByOne: BacktestResult[] = [];
    for (const request of REQUESTS) oneByOne.push(await run(request));
    const batch = await Promise.all(REQUESTS.map((request) => run(request)));

    batch.forEach((result, k) => expectIdentical(result, oneByOne[k]));
    // Every strategy traded, so the comparison covers fills, not just flat curves.
    for (const result of oneByOne) expect(result.fills.length).toBeGreaterThan(0);
    expect(events).toEqual([]);
  });

  test('pool equals the in-thread runner', async () => {
    const pooled = await Promise.all(REQUESTS.map((request) => run(request)));
    for (let k = 0; k < REQUESTS.length; k++) expectIdentical(pooled[k], await runBacktest(REQUESTS[k]));
  });

  test('repeated batches stay identical', async () => {
    const first = await Promise.all(REQUESTS.map((request) => run(request)));
    const second = await Promise.all([...REQUESTS].reverse().map((request) => run(request)));
    second.reverse();
    first.forEach((result, k) => expectIdentical(second[k], result));
  });

  test('random draws depend on the inputs', async () => {
    const [low, high] = await Promise.all([run(REQUESTS[2]), run(REQUESTS[3])]);
    // Same source, other parameter: another seed, so the logged draws differ.
    expect(low.logs[0]).not.toBe(high.logs[0]);
    expect(low.logs[0]).toMatch(/^\[bar 0\] 0\.\d+ true 2021-01-04T00:00:00\.000Z$/);
  });
});
