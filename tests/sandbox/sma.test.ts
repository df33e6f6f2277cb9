/**
 * The example SMA crossover on the real S&P 500 series (vega-datasets, 2000-2020), run through
 * the service and its worker pool, then checked against a plain re-computation of its signals.
 */
import { parse } from '../../protocol/schema';
import { runBacktest } from '../../services/sandbox/backtest';
import { createSandboxService, runParamsSchema } from '../../services/sandbox/service';
import type { BacktestRequest, BacktestResult, Bars } from '../../services/sandbox/types';
import { createSandboxContext, readSp500Bars, SMA_SOURCE } from './fixtures';

/** Bars at which the crossover's fills must happen: one bar after each signal change. */
function expectedFillBars(bars: Bars, fast: number, slow: number): number[] {
  const mean = (end: number, length: number): number => {
    let sum = 0;
    for (let i = end - length + 1; i <= end; i++) sum += bars.close[i];
    return sum / length;
  };
  const fills: number[] = [];
  let long = false;
  for (let t = slow - 1; t < bars.close.length - 1; t++) {
    const wantLong = mean(t, fast) > mean(t, slow);
    if (wantLong !== long) {
      fills.push(t + 1);
      long = wantLong;
    }
  }
  return fills;
}

describe('sandbox SMA crossover on S&P 500', () => {
  const bars = readSp500Bars();
  const { ctx, events } = createSandboxContext();
  const service = createSandboxService({ threads: 2 });
  const request: BacktestRequest = { source: SMA_SOURCE, filename: 'sma-crossover.ts', bars, params: { fast: 50, slow: 200 } };
  let pooled: BacktestResult;

  beforeAll(async () => {
    await service.start!(ctx);
    pooled = (await service.methods.run.handle(parse(runParamsSchema, request, 'params'), ctx)) as BacktestResult;
  });

  afterAll(async () => {
    await service.stop!(ctx);
  });

  test('result has sensible metrics', () => {
    expect(pooled.bars).toBe(5105);
    expect(pooled.equity).toHaveLength(5105);
    expect(pooled.metrics.fills).toBe(pooled.fills.length);
    expect(pooled.metrics.fills).toBeGreaterThan(4);
    expect(pooled.metrics.final_equity).toBe(pooled.equity[5104]);
    expect(pooled.metrics.final_equity).toBeGreaterThan(0);
    expect(pooled.metrics.exposure).toBeGreaterThan(0.3);
    expect(pooled.metrics.exposure).toBeLessThan(1);
    expect(pooled.metrics.max_drawdown).toBeGreaterThan(0);
    expect(pooled.metrics.max_drawdown).toBeLessThan(0.6);
    expect(pooled.metrics.volatility).toBeGreaterThan(0.05);
    expect(pooled.metrics.volatility).toBeLessThan(0.3);
    expect(Number.isFinite(pooled.metrics.sharpe)).toBe(true);
    expect(pooled.metrics.total_return).toBeCloseTo(pooled.metrics.final_equity / 100_000 - 1, 12);
    expect(events).toHaveLength(0);
  });

  test('fills follow the crossover signals', () => {
    expect(pooled.fills.map((fill) => fill.bar)).toEqual(expectedFillBars(bars, 50, 200));
    pooled.fills.forEach((fill, k) => {
      expect(fill.side).toBe(k % 2 === 0 ? 'buy' : 'sell');
      expect(fill.price).toBe(bars.open[fill.bar]);
      expect(fill.commission).toBe(0);
    });
    // The first buy invests all of the starting cash at that bar's open.
    expect(pooled.fills[0].qty).toBe(100_000 / bars.open[pooled.fills[0].bar]);
    expect(pooled.fills[0].bar).toBeGreaterThanOrEqual(200);
  });

  test('direct run matches the pooled run bit for bit', async () => {
    const direct = await runBacktest(request);
    const again = await runBacktest(request);
    expect(Buffer.from(direct.equity.buffer).equals(Buffer.from(pooled.equity.buffer))).toBe(true);
    expect(Buffer.from(again.equity.buffer).equals(Buffer.from(direct.equity.buffer))).toBe(true);
    expect(direct.metrics).toEqual(pooled.metrics);
  });

  test('default parameters are 50 and 200', async () => {
    const defaults = await runBacktest({ ...request, params: {} });
    expect(Buffer.from(defaults.equity.buffer).equals(Buffer.from(pooled.equity.buffer))).toBe(true);
  });

  test('unequal bar columns are rejected', async () => {
    const short = { ...bars, volume: bars.volume.slice(1) };
    await expect(service.methods.run.handle(parse(runParamsSchema, { ...request, bars: short }, 'params'), ctx)).rejects.toMatchObject({
      code: 'E_INVALID_PARAMS',
      details: { path: 'params.bars.volume' },
    });
  });
});
