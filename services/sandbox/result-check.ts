/**
 * The checks a backtest result passes before the service returns it: the runner's own account
 * must equal the host's re-derivation from the orders, and the result must be well formed.
 *
 * Both sides apply the same formulas in the same order to the same doubles (simulate.ts and its
 * mirror in runner-source.ts), and JavaScript arithmetic is IEEE 754 without fused operations,
 * so an honest run agrees bit for bit. A difference means the accounting inside the isolate was
 * changed, or the two copies of the fill rules drifted apart; either way the numbers cannot be
 * trusted, so the run is rejected with E_RESULT_INVALID and reason `account-mismatch`.
 */
import { BacktestrError } from '../../protocol/errors';
import type { BacktestResult, RunnerAccount, Simulation } from './types';

/** Raises E_RESULT_INVALID (reason `account-mismatch`) unless the runner's account equals the host's. */
export function crossCheckAccount(simulation: Simulation, account: RunnerAccount): void {
  const checks: [field: string, isolate: number, host: number][] = [
    ['fills', account.fills, simulation.fills.length],
    ['position', account.position, simulation.finalPosition],
    ['cash', account.cash, simulation.cash],
  ];
  for (const [field, isolateValue, hostValue] of checks) {
    if (!Object.is(isolateValue, hostValue)) {
      throw new BacktestrError('E_RESULT_INVALID', `strategy result rejected: the isolate's ${field} (${isolateValue}) differs from the host's re-derivation (${hostValue})`, {
        reason: 'account-mismatch',
        field,
      });
    }
  }
}

/**
 * Returns the index of the first value of `values` that is not finite, or -1. The loop has a
 * function of its own so that V8 can optimize it whole: inside a larger function that runs once
 * per backtest, it started interpreted and was replaced on the stack on every run (Node 24.21).
 */
function firstNonFinite(values: Float64Array): number {
  for (let i = 0; i < values.length; i++) {
    // x - x is 0 for every finite x and NaN for NaN and the infinities.
    if (values[i] - values[i] !== 0) return i;
  }
  return -1;
}

function malformed(what: string): never {
  throw new BacktestrError('E_RESULT_INVALID', `backtest result rejected: ${what}`, { reason: 'malformed' });
}

/**
 * Raises E_RESULT_INVALID (reason `malformed`) unless every number of `result` is finite, the
 * equity curve has one value per bar, fills are in bar order with positive quantities and
 * prices, and the metrics agree with the curve and the fills.
 */
export function checkBacktestResult(result: BacktestResult, barCount: number): void {
  if (result.bars !== barCount) malformed(`bars is ${result.bars}, expected ${barCount}`);
  // Realm-independent, because a result from a worker thread is built by another realm's Float64Array.
  const isFloat64Array = Object.prototype.toString.call(result.equity) === '[object Float64Array]';
  if (!isFloat64Array || result.equity.length !== barCount) malformed('equity does not have one value per bar');
  const nonFinite = firstNonFinite(result.equity);
  if (nonFinite >= 0) malformed(`equity[${nonFinite}] is not finite`);

  let previousBar = 0;
  for (let k = 0; k < result.fills.length; k++) {
    const fill = result.fills[k];
    if (!Number.isInteger(fill.bar) || fill.bar < previousBar || fill.bar < 1 || fill.bar >= barCount) malformed(`fill ${k} has bar ${fill.bar}`);
    previousBar = fill.bar;
    if (fill.side !== 'buy' && fill.side !== 'sell') malformed(`fill ${k} has side ${String(fill.side)}`);
    for (const key of ['time', 'qty', 'price', 'commission'] as const) {
      if (!Number.isFinite(fill[key])) malformed(`fill ${k} has a ${key} that is not finite`);
    }
    if (!(fill.qty > 0) || !(fill.price > 0) || fill.commission < 0) malformed(`fill ${k} has a quantity, price or commission out of range`);
  }

  const { metrics } = result;
  for (const [key, value] of Object.entries(metrics)) {
    if (typeof value !== 'number' || !Number.isFinite(value)) malformed(`metric ${key} is not finite`);
  }
  if (metrics.fills !== result.fills.length) malformed('metric fills differs from the fills');
  if (barCount > 0 && !Object.is(metrics.final_equity, result.equity[barCount - 1])) malformed('metric final_equity differs from the equity curve');
  if (metrics.exposure < 0 || metrics.exposure > 1 || metrics.max_drawdown < 0 || metrics.max_drawdown > 1) malformed('exposure or drawdown out of 0..1');
}
