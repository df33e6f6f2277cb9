/**
 * Performance metrics of a close-marked equity curve. Every definition choice is stated where
 * it is made; docs/strategy-api.md lists them for strategy authors.
 */
import type { Metrics } from './types';

const MS_PER_DAY = 86_400_000;
const DAYS_PER_YEAR = 365.25;
/** Trading days per year, used to annualise daily volatility and Sharpe ratio. */
const TRADING_DAYS_PER_YEAR = 252;

export interface MetricsInput {
  /** Epoch ms of each bar. */
  time: Float64Array;
  equity: Float64Array;
  /** Number of bars that end holding a non-zero position. */
  exposedBars: number;
  initialCash: number;
  fillCount: number;
}

/**
 * Daily close-to-close return of the equity curve at bar `i` (i >= 1): `equity[i] / equity[i - 1] - 1`.
 * Definition choice: a step from an equity of 0 or less counts as a return of 0, because a
 * ratio to it has no meaning (long/flat accounting keeps equity positive while prices are).
 */
function dailyReturnAt(equity: Float64Array, i: number): number {
  return equity[i - 1] > 0 ? equity[i] / equity[i - 1] - 1 : 0;
}

/** Daily close-to-close returns of the equity curve, one per bar after the first. */
export function dailyReturns(equity: Float64Array): Float64Array {
  const returns = new Float64Array(Math.max(0, equity.length - 1));
  for (let i = 1; i < equity.length; i++) returns[i - 1] = dailyReturnAt(equity, i);
  return returns;
}

/** Sample mean and sample standard deviation (n - 1); the deviation is 0 for fewer than 2 values. */
export function meanAndSampleStd(values: Float64Array): { mean: number; std: number } {
  if (values.length === 0) return { mean: 0, std: 0 };
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i];
  const mean = sum / values.length;
  if (values.length < 2) return { mean, std: 0 };
  let squares = 0;
  for (let i = 0; i < values.length; i++) squares += (values[i] - mean) * (values[i] - mean);
  return { mean, std: Math.sqrt(squares / (values.length - 1)) };
}

/** The statistics of an equity curve that computeMetrics needs. */
export interface CurveSummary {
  /** Sample mean and sample standard deviation of the daily returns. */
  mean: number;
  std: number;
  /** The same value as maxDrawdown(equity). */
  maxDrawdown: number;
}

/**
 * Daily return statistics and maximum drawdown of an equity curve, without allocating the
 * returns. `add` takes the curve in bar order, in one call or in chunks as a run produces it
 * (rederivation.ts): it sums the returns and tracks the drawdown. `summarize` then sums the
 * squared deviations from the mean in a second pass. The sums run in the same order as in
 * meanAndSampleStd(dailyReturns()) and maxDrawdown(), so the results are the same bit for bit,
 * however the curve was split.
 */
export class CurveStatistics {
  private added = 0;
  private sum = 0;
  private peak = -Infinity;
  private worst = 0;

  /** Adds bars `from` to `to` - 1 of `equity`; `from` must be the number of bars added so far. */
  add(equity: Float64Array, from: number, to: number): void {
    if (from !== this.added || to < from || to > equity.length) throw new RangeError(`curve statistics: expected bars from ${this.added}, got ${from} to ${to}`);
    let { sum, peak, worst } = this;
    for (let i = from; i < to; i++) {
      const value = equity[i];
      if (i > 0) sum += dailyReturnAt(equity, i);
      if (value > peak) peak = value;
      if (peak > 0) {
        const drawdown = 1 - value / peak;
        if (drawdown > worst) worst = drawdown;
      }
    }
    this.sum = sum;
    this.peak = peak;
    this.worst = worst;
    this.added = to;
  }

  /** Returns the statistics of the whole of `equity`, every bar of which must have been added. */
  summarize(equity: Float64Array): CurveSummary {
    if (this.added !== equity.length) throw new RangeError(`curve statistics: ${this.added} of ${equity.length} bars added`);
    const count = equity.length - 1;
    if (count <= 0) return { mean: 0, std: 0, maxDrawdown: this.worst };

    const mean = this.sum / count;
    if (count < 2) return { mean, std: 0, maxDrawdown: this.worst };
    return { mean, std: Math.sqrt(squaredDeviations(equity, mean) / (count - 1)), maxDrawdown: this.worst };
  }
}

/**
 * Returns the sum of the squared deviations of the daily returns of `equity` from `mean`. The
 * loop has a function of its own so that V8 optimizes it whole instead of replacing it on the
 * stack on every backtest (see firstNonFinite in result-check.ts).
 */
function squaredDeviations(equity: Float64Array, mean: number): number {
  let squares = 0;
  for (let i = 1; i < equity.length; i++) {
    const deviation = dailyReturnAt(equity, i) - mean;
    squares += deviation * deviation;
  }
  return squares;
}

/** Largest fall from a running peak of `equity`, as a positive fraction of that peak. */
export function maxDrawdown(equity: Float64Array): number {
  let peak = -Infinity;
  let worst = 0;
  for (let i = 0; i < equity.length; i++) {
    const value = equity[i];
    if (value > peak) peak = value;
    if (peak > 0) {
      const drawdown = 1 - value / peak;
      if (drawdown > worst) worst = drawdown;
    }
  }
  return worst;
}

/** Computes the metrics of a backtest from its equity curve and its count of exposed bars. */
export function computeMetrics(input: MetricsInput): Metrics {
  const statistics = new CurveStatistics();
  statistics.add(input.equity, 0, input.equity.length);
  return metricsFromSummary(input, statistics.summarize(input.equity));
}

/** Computes the metrics of a backtest from its equity curve and the curve's `summary`. */
export function metricsFromSummary(input: MetricsInput, summary: CurveSummary): Metrics {
  const { time, equity, exposedBars, initialCash, fillCount } = input;
  const barCount = equity.length;
  const finalEquity = barCount > 0 ? equity[barCount - 1] : initialCash;
  const growth = finalEquity / initialCash;

  // Definition choice: calendar days run from the first to the last bar's date; with one bar (0
  // days) CAGR is 0, and a total loss gives -1 rather than a complex root. Growth annualised
  // over a span of minutes can overflow a double; it is then reported as Number.MAX_VALUE, so
  // that every metric stays finite.
  const calendarDays = barCount > 1 ? (time[barCount - 1] - time[0]) / MS_PER_DAY : 0;
  let cagr = 0;
  if (growth <= 0) cagr = -1;
  else if (calendarDays > 0) cagr = Math.min(Math.pow(growth, DAYS_PER_YEAR / calendarDays) - 1, Number.MAX_VALUE);

  // Risk-free rate 0; Sharpe is 0 when the returns do not vary.
  const { mean, std, maxDrawdown: drawdown } = summary;
  const annualisation = Math.sqrt(TRADING_DAYS_PER_YEAR);
  const volatility = std * annualisation;
  const sharpe = std > 0 ? (mean / std) * annualisation : 0;

  // Exposure is the fraction of bars that end holding a non-zero position.
  return {
    final_equity: finalEquity,
    total_return: growth - 1,
    cagr,
    volatility,
    sharpe,
    max_drawdown: drawdown,
    fills: fillCount,
    exposure: barCount > 0 ? exposedBars / barCount : 0,
  };
}
