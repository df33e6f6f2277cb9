/**
 * The runner's O(1) indicators against direct textbook computations over the same bars, on
 * every bar and when bars are skipped between calls (the running state must catch up).
 */
import { runBacktest } from '../../services/sandbox/backtest';
import type { Bars } from '../../services/sandbox/types';
import { barsFrom } from './fixtures';

const COUNT = 600;

/** A jagged series with trends, flat stretches and gaps, so every indicator path is used. */
function jaggedBars(): Bars {
  const closes: number[] = [];
  let price = 50;
  for (let i = 0; i < COUNT; i++) {
    // Bars 0-19 of every 150 keep the price flat: no gains or losses.
    if (i % 150 >= 20) price *= 1 + 0.02 * Math.sin(i * 1.7) + 0.001 * ((i * 7919) % 13 - 6);
    closes.push(price);
  }
  const opens = closes.map((close, i) => (i === 0 ? close : closes[i - 1] * (1 + 0.003 * Math.cos(i))));
  return barsFrom(opens, closes);
}

const bars = jaggedBars();
const close = Array.from(bars.close);
const high = Array.from(bars.high);
const low = Array.from(bars.low);

function window(values: number[], t: number, period: number): number[] {
  return values.slice(t - period + 1, t + 1);
}

const expected = {
  sma: (t: number, n: number) => window(close, t, n).reduce((sum, value) => sum + value, 0) / n,
  stddev: (t: number, n: number) => {
    const values = window(close, t, n);
    const mean = values.reduce((sum, value) => sum + value, 0) / n;
    return Math.sqrt(values.reduce((sum, value) => sum + (value - mean) ** 2, 0) / n);
  },
  ema: (t: number, n: number) => {
    let value = close.slice(0, n).reduce((sum, price) => sum + price, 0) / n;
    for (let i = n; i <= t; i++) value += (2 / (n + 1)) * (close[i] - value);
    return value;
  },
  rsi: (t: number, n: number) => {
    let gain = 0;
    let loss = 0;
    for (let i = 1; i <= n; i++) {
      const change = close[i] - close[i - 1];
      gain += Math.max(change, 0);
      loss += Math.max(-change, 0);
    }
    gain /= n;
    loss /= n;
    for (let i = n + 1; i <= t; i++) {
      const change = close[i] - close[i - 1];
      gain = (gain * (n - 1) + Math.max(change, 0)) / n;
      loss = (loss * (n - 1) + Math.max(-change, 0)) / n;
    }
    if (loss === 0) return gain === 0 ? 50 : 100;
    return 100 - 100 / (1 + gain / loss);
  },
  atr: (t: number, n: number) => {
    const trueRange = (i: number) => (i === 0 ? high[0] - low[0] : Math.max(high[i] - low[i], Math.abs(high[i] - close[i - 1]), Math.abs(low[i] - close[i - 1])));
    let value = 0;
    for (let i = 0; i < n; i++) value += trueRange(i);
    value /= n;
    for (let i = n; i <= t; i++) value = (value * (n - 1) + trueRange(i)) / n;
    return value;
  },
  highest: (t: number, n: number) => Math.max(...window(close, t, n)),
  lowest: (t: number, n: number) => Math.min(...window(close, t, n)),
  highestHigh: (t: number, n: number) => Math.max(...window(high, t, n)),
  lowestLow: (t: number, n: number) => Math.min(...window(low, t, n)),
};

const CALLS: Record<keyof typeof expected, string> = {
  sma: 'ctx.sma(n)',
  stddev: 'ctx.stddev(n)',
  ema: 'ctx.ema(n)',
  rsi: 'ctx.rsi(n)',
  atr: 'ctx.atr(n)',
  highest: 'ctx.highest(n)',
  lowest: 'ctx.lowest(n)',
  highestHigh: "ctx.highest(n, 'high')",
  lowestLow: "ctx.lowest(n, 'low')",
};

/** Logs `[t, value]` on every `stride`-th bar for each period; values come back as JSON. */
async function sample(call: string, periods: number[], stride: number): Promise<[number, number, number][]> {
  const source = `
function onBar(ctx) {
  const t = ctx.bar.index;
  if (t % ${stride} !== 0) return;
  const row = [];
  for (const n of ${JSON.stringify(periods)}) row.push([t, n, ${call}]);
  ctx.log(row);
}`;
  const result = await runBacktest({ source, filename: 'indicators.js', bars, params: {}, options: { maxLogLines: COUNT } });
  return result.logs.flatMap((line) => JSON.parse(line.slice(line.indexOf(' ') + 1).replace(/^\d+\] /, '')) as [number, number, number | null][]).map(([t, n, value]) => [t, n, value ?? NaN]);
}

describe('sandbox indicators', () => {
  test.each(Object.keys(CALLS) as (keyof typeof expected)[])('%s matches a direct computation', async (name) => {
    const periods = [1, 2, 14, 50, 200];
    for (const stride of [1, 7, 250]) {
      const rows = await sample(CALLS[name], periods, stride);
      expect(rows.length).toBe(Math.ceil(COUNT / stride) * periods.length);
      for (const [t, n, value] of rows) {
        const ready = name === 'rsi' ? t >= n : t + 1 >= n;
        if (!ready) {
          expect([name, t, n, value]).toEqual([name, t, n, NaN]);
          continue;
        }
        const want = expected[name](t, n);
        // Running sums drift by a few ulps from a fresh sum. The deviation's drift scales with
        // the price level rather than with the deviation itself, which can be 0.
        const scale = name === 'stddev' ? close[t] * 10 : Math.max(1, Math.abs(want));
        expect(Math.abs(value - want)).toBeLessThanOrEqual(1e-9 * scale);
      }
    }
  });

  test('unknown field is a RangeError', async () => {
    const result = await runBacktest({
      source: "function onBar(ctx) { if (ctx.bar.index === 3) { try { ctx.highest(2, 'time'); } catch (e) { ctx.log(e.name); } } }",
      filename: 'field.js',
      bars,
      params: {},
    });
    expect(result.logs).toEqual(['[bar 3] RangeError']);
  });
});
