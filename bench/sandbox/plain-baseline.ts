/**
 * The plain-Node baseline of the sandbox benchmark: the SMA crossover of examples/sma-crossover.ts
 * written the way a user would write it in plain JavaScript. One loop over the bars keeps the two
 * moving averages as window sums, places orders, fills them at the next open and marks equity at
 * every close. The same metrics as the sandbox's are then computed from the equity curve.
 *
 * It follows the sandbox's rules exactly, so that its result can be compared bit for bit with
 * the sandboxed run: orders fill at the next bar's open (simulate.ts), and each window sum is
 * recomputed from scratch after `period` sliding steps, as the runner's ctx.sma does to bound
 * rounding drift. The recomputation costs about one addition per bar and average.
 */
import { computeMetrics } from '../../services/sandbox/metrics';
import type { Bars, Fill, Metrics } from '../../services/sandbox/types';

export interface PlainResult {
  fills: Fill[];
  equity: Float64Array;
  metrics: Metrics;
}

/** A simple moving average of closes that slides one bar at a time. */
class WindowAverage {
  private sum = 0;
  private steps = 0;
  private lastBar = -2;

  constructor(private readonly period: number) {}

  /** Returns the average of closes t - period + 1 to t. Calls for consecutive bars cost O(1). */
  at(close: Float64Array, t: number): number {
    const period = this.period;
    if (this.lastBar === t - 1 && this.steps < period) {
      this.sum += close[t] - close[t - period];
      this.steps++;
    } else {
      let sum = 0;
      for (let i = t - period + 1; i <= t; i++) sum += close[i];
      this.sum = sum;
      this.steps = 0;
    }
    this.lastBar = t;
    return this.sum / period;
  }
}

/** Runs the SMA crossover over `bars` with all cash in or flat, long only. */
export function runPlainSmaCrossover(bars: Bars, fast: number, slow: number, initialCash: number, commission: number): PlainResult {
  const { time, open, close } = bars;
  const barCount = close.length;
  const equity = new Float64Array(barCount);
  const fills: Fill[] = [];
  const fastAverage = new WindowAverage(fast);
  const slowAverage = new WindowAverage(slow);
  let cash = initialCash;
  let units = 0;
  let exposedBars = 0;
  // The target fraction placed on the previous bar, or -1 when no order is pending.
  let pendingTarget = -1;

  for (let t = 0; t < barCount; t++) {
    if (pendingTarget >= 0) {
      const price = open[t];
      if (pendingTarget > 0 && cash > 0) {
        const qty = cash / (price * (1 + commission));
        cash = 0;
        units += qty;
        fills.push({ bar: t, time: time[t], side: 'buy', qty, price, commission: qty * price * commission });
      } else if (pendingTarget === 0 && units > 0) {
        const notional = units * price;
        fills.push({ bar: t, time: time[t], side: 'sell', qty: units, price, commission: notional * commission });
        cash += notional - notional * commission;
        units = 0;
      }
      pendingTarget = -1;
    }

    if (t + 1 >= slow) {
      const wantLong = fastAverage.at(close, t) > slowAverage.at(close, t);
      if (wantLong && units === 0) pendingTarget = 1;
      else if (!wantLong && units > 0) pendingTarget = 0;
    }

    equity[t] = cash + units * close[t];
    if (units !== 0) exposedBars++;
  }

  const metrics = computeMetrics({ time, equity, exposedBars, initialCash, fillCount: fills.length });
  return { fills, equity, metrics };
}
