/**
 * The check every bar passes before its run's result is used: time finite and strictly
 * increasing, prices finite and above 0, volume finite and not negative, all columns of one
 * length. The error names the first invalid value, checking the columns in the order time,
 * open, high, low, close, volume.
 *
 * The columns fall into two groups, so that a worker thread can check each group when it suits
 * the run. High, low and volume are read only by the strategy in its isolate, and they move
 * into the isolate without a copy, so they are checked before the run starts. Time, open and
 * close stay with the host for its re-derivation and are checked while the strategy runs.
 */
import { BacktestrError } from '../../protocol/errors';
import { BAR_COLUMNS, type Bars } from './types';

type BarColumn = (typeof BAR_COLUMNS)[number];

/** Columns the host's re-derivation reads (simulate.ts, metrics.ts). */
const ACCOUNTING_COLUMNS: readonly BarColumn[] = ['time', 'open', 'close'];

function invalidBars(path: string, message: string): never {
  throw new BacktestrError('E_INVALID_PARAMS', `invalid bars: ${message}`, { path: `params.bars.${path}` });
}

/** Returns true when every bar has a finite, strictly increasing time and a valid open and close. */
function accountingColumnsValid(bars: Bars, barCount: number): boolean {
  const { time, open, close } = bars;
  // Starting at -Infinity makes the first comparison a finiteness check of time[0].
  let previousTime = -Infinity;
  for (let i = 0; i < barCount; i++) {
    const barTime = time[i];
    // Every comparison with NaN is false, so NaN fails each of these checks.
    if (!(barTime > previousTime && barTime < Infinity)) return false;
    previousTime = barTime;
    const o = open[i];
    const c = close[i];
    if (!(o > 0 && o < Infinity && c > 0 && c < Infinity)) return false;
  }
  return true;
}

/** Returns true when every bar has a valid high, low and volume. */
function strategyColumnsValid(bars: Bars, barCount: number): boolean {
  const { high, low, volume } = bars;
  for (let i = 0; i < barCount; i++) {
    const h = high[i];
    const l = low[i];
    const v = volume[i];
    if (!(h > 0 && h < Infinity && l > 0 && l < Infinity && v >= 0 && v < Infinity)) return false;
  }
  return true;
}

/**
 * Raises E_INVALID_PARAMS for the first invalid value among `columns`, checked in the order
 * time, open, high, low, close, volume. Runs only after a fast check found an invalid bar.
 */
function rejectFirstInvalidBar(bars: Bars, barCount: number, columns: readonly BarColumn[]): never {
  for (const name of BAR_COLUMNS) {
    if (!columns.includes(name)) continue;
    const column = bars[name];
    for (let i = 0; i < barCount; i++) {
      const value = column[i];
      if (name === 'time') {
        if (!Number.isFinite(value)) invalidBars('time', `time[${i}] is not a finite number`);
        if (i > 0 && !(value > column[i - 1])) invalidBars('time', `time[${i}] is not after time[${i - 1}]: bars must be in increasing time order`);
      } else if (name === 'volume') {
        if (!(value >= 0 && value < Infinity)) invalidBars('volume', Number.isFinite(value) ? `volume[${i}] is negative` : `volume[${i}] is not a finite number`);
      } else if (!(value > 0 && value < Infinity)) {
        // Rejects NaN too, since every comparison with NaN is false.
        invalidBars(name, Number.isFinite(value) ? `${name}[${i}] is ${value}, but prices must be above 0` : `${name}[${i}] is not a finite number`);
      }
    }
  }
  // Unreachable while the fast checks apply the same rules, but a drift must not pass bars.
  throw new BacktestrError('E_INTERNAL', 'bar check failed without naming an invalid value');
}

/** Raises E_INVALID_PARAMS unless all columns have one equal length of at least one bar. */
export function validateBarLengths(bars: Bars): void {
  const barCount = bars.time.length;
  if (barCount === 0) invalidBars('time', 'at least one bar is required');
  for (const name of BAR_COLUMNS) {
    if (bars[name].length !== barCount) invalidBars(name, `column ${name} has ${bars[name].length} values but time has ${barCount}`);
  }
}

/**
 * Checks high, low and volume while every column is still present. An error names the first
 * invalid value of all six columns, so it is the same error validateBars raises.
 */
export function validateStrategyColumns(bars: Bars): void {
  const barCount = bars.time.length;
  if (!strategyColumnsValid(bars, barCount)) rejectFirstInvalidBar(bars, barCount, BAR_COLUMNS);
}

/**
 * Checks time, open and close, after validateStrategyColumns passed. High, low and volume may
 * be gone by then (moved into an isolate), and the first invalid value is in these columns.
 */
export function validateAccountingColumns(bars: Bars): void {
  const barCount = bars.time.length;
  if (!accountingColumnsValid(bars, barCount)) rejectFirstInvalidBar(bars, barCount, ACCOUNTING_COLUMNS);
}

/** Raises E_INVALID_PARAMS unless every column and value is valid, naming the first invalid value. */
export function validateBars(bars: Bars): void {
  validateBarLengths(bars);
  const barCount = bars.time.length;
  if (!accountingColumnsValid(bars, barCount) || !strategyColumnsValid(bars, barCount)) rejectFirstInvalidBar(bars, barCount, BAR_COLUMNS);
}
