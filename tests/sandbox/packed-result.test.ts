/**
 * The packed form in which a worker thread returns a finished backtest. Fills survive the round
 * trip bit for bit. A packed result with a partial fill, an unknown side code, a fill array of
 * another type, another bar count or an equity curve of the wrong type or length is rejected as
 * malformed.
 */
import { finishBacktest, toStrategyJob } from '../../services/sandbox/backtest';
import { executeStrategy } from '../../services/sandbox/isolate-run';
import { FILL_STRIDE, packBacktestResult, unpackBacktestResult, type PackedBacktestResult } from '../../services/sandbox/packed-result';
import type { BacktestResult } from '../../services/sandbox/types';
import { errorOf, syntheticBars } from './fixtures';

const TRADER = 'function onBar(ctx) { if (ctx.bar.index % 10 === 0) ctx.targetPercent(ctx.bar.index % 20 === 0 ? 0.7 : 0.1); }';
const job = toStrategyJob({ source: TRADER, filename: 'trader.js', bars: syntheticBars(100), params: {}, options: { commission: 0.002 } });

describe('sandbox packed result', () => {
  let result: BacktestResult;

  beforeAll(async () => {
    result = finishBacktest(job, await executeStrategy(job));
  });

  test('round trip keeps every fill', () => {
    const packed = packBacktestResult(result);
    expect(packed.fills.length).toBe(result.fills.length * FILL_STRIDE);
    const unpacked = unpackBacktestResult(packed, 100);
    expect(unpacked.fills).toEqual(result.fills);
    expect(unpacked.fills.map((fill) => fill.side)).toContain('buy');
    expect(unpacked.fills.map((fill) => fill.side)).toContain('sell');
    expect(unpacked.equity.buffer).toBe(result.equity.buffer);
    expect(unpacked.equity).toEqual(result.equity);
    expect(unpacked.metrics).toEqual(result.metrics);
    expect(unpacked.logs).toEqual(result.logs);
  });

  test('round trip keeps exact doubles', () => {
    const odd = { ...result, fills: [{ bar: 3, time: -0, side: 'sell' as const, qty: 0.1 + 0.2, price: Number.MIN_VALUE, commission: -0 }] };
    const [fill] = unpackBacktestResult(packBacktestResult(odd), 100).fills;
    expect(Object.is(fill.time, -0)).toBe(true);
    expect(Object.is(fill.commission, -0)).toBe(true);
    expect(fill.qty).toBe(0.1 + 0.2);
    expect(fill.price).toBe(Number.MIN_VALUE);
  });

  test('malformed packs are rejected', () => {
    const packed = packBacktestResult(result);
    const withSide = (code: number): Float64Array => {
      const fills = packed.fills.slice();
      fills[2] = code;
      return fills;
    };
    const cases: [string, PackedBacktestResult][] = [
      ['partial fill', { ...packed, fills: packed.fills.slice(0, FILL_STRIDE + 1) }],
      ['side code 2', { ...packed, fills: withSide(2) }],
      ['side code NaN', { ...packed, fills: withSide(NaN) }],
      ['side code 0.5', { ...packed, fills: withSide(0.5) }],
      ['plain array', { ...packed, fills: Array.from(packed.fills) as unknown as Float64Array }],
      ['Float32Array', { ...packed, fills: Float32Array.from(packed.fills) as unknown as Float64Array }],
      ['other bar count', { ...packed, bars: 99 }],
      ['short equity', { ...packed, equity: packed.equity.subarray(1) }],
      ['equity as plain array', { ...packed, equity: Array.from(packed.equity) as unknown as Float64Array }],
      ['logs not an array', { ...packed, logs: 'line' as unknown as string[] }],
    ];
    for (const [name, malformed] of cases) {
      const error = errorOf(() => unpackBacktestResult(malformed, 100));
      expect([name, error.code, error.details.reason]).toEqual([name, 'E_RESULT_INVALID', 'malformed']);
    }
  });

  test('unknown side packs as rejected code', () => {
    const forged = { ...result, fills: [{ ...result.fills[0], side: 'short' as 'buy' }] };
    const error = errorOf(() => unpackBacktestResult(packBacktestResult(forged), 100));
    expect(error.code).toBe('E_RESULT_INVALID');
    expect(error.details.reason).toBe('malformed');
  });
});
