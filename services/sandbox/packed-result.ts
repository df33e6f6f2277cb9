/**
 * The packed form of a finished backtest, which a worker thread sends back to the service's
 * thread. Its fills are one Float64Array, so the fills and the equity curve both cross as
 * transferred buffers instead of a structured clone of one object per fill. Cloning the 6,371
 * fills of the 1M-bar benchmark run cost about 10 ms, and the transfer costs under 1 ms
 * (Node 24.21, 2-core AMD EPYC, bench/sandbox/run.ts).
 *
 * Layout: FILL_STRIDE doubles per fill, in this order: bar, time, side (SIDE_BUY or SIDE_SELL),
 * qty, price, commission. Doubles keep every value bit for bit, so unpacking gives back the
 * fills that the worker checked.
 */
import { BacktestrError } from '../../protocol/errors';
import type { BacktestResult, Fill } from './types';

export const FILL_STRIDE = 6;
const SIDE_BUY = 0;
const SIDE_SELL = 1;

/** Returns the code of `side`, or NaN for an unknown side, which unpacking rejects. */
function sideCodeOf(side: string): number {
  if (side === 'buy') return SIDE_BUY;
  if (side === 'sell') return SIDE_SELL;
  return NaN;
}

/** A BacktestResult whose fills are packed as described in the file header. */
export interface PackedBacktestResult extends Omit<BacktestResult, 'fills'> {
  fills: Float64Array;
}

/** Packs the fills of `result`. The equity curve, metrics and logs are shared, not copied. */
export function packBacktestResult(result: BacktestResult): PackedBacktestResult {
  const { fills } = result;
  const packed = new Float64Array(fills.length * FILL_STRIDE);
  for (let k = 0; k < fills.length; k++) {
    const fill = fills[k];
    const at = k * FILL_STRIDE;
    packed[at] = fill.bar;
    packed[at + 1] = fill.time;
    packed[at + 2] = sideCodeOf(fill.side);
    packed[at + 3] = fill.qty;
    packed[at + 4] = fill.price;
    packed[at + 5] = fill.commission;
  }
  return { bars: result.bars, fills: packed, equity: result.equity, metrics: result.metrics, logs: result.logs };
}

function malformed(what: string): never {
  throw new BacktestrError('E_RESULT_INVALID', `backtest result rejected: ${what}`, { reason: 'malformed' });
}

/**
 * Returns fill objects built from packed fills. The loop has a function of its own so that V8
 * optimizes it whole instead of replacing it on the stack on every backtest (see firstNonFinite
 * in result-check.ts).
 */
function unpackFills(columns: Float64Array): Fill[] {
  const fills: Fill[] = new Array(columns.length / FILL_STRIDE);
  for (let k = 0; k < fills.length; k++) {
    const at = k * FILL_STRIDE;
    const sideCode = columns[at + 2];
    if (sideCode !== SIDE_BUY && sideCode !== SIDE_SELL) malformed(`fill ${k} has side code ${sideCode}`);
    fills[k] = {
      bar: columns[at],
      time: columns[at + 1],
      side: sideCode === SIDE_BUY ? 'buy' : 'sell',
      qty: columns[at + 3],
      price: columns[at + 4],
      commission: columns[at + 5],
    };
  }
  return fills;
}

/**
 * Rebuilds a packed result in this realm, as a copy with exactly the fields of a BacktestResult:
 * fill objects from the packed fills, the metrics field by field and the logs as strings. A
 * result that crossed a thread boundary is built by the other thread's structured clone, so this
 * leaves no foreign prototype or extra key in what the service returns. The equity view shares
 * the transferred buffer instead of copying it.
 *
 * Raises E_RESULT_INVALID (reason `malformed`) when the result is not for `barCount` bars, the
 * equity curve or the packed fills are not Float64Arrays of the right length, or a side code is
 * unknown. The values were checked by checkBacktestResult in the worker, after the host had
 * re-derived them from the isolate's orders. Both threads run only host code in one process, so
 * the service does not check them again.
 */
export function unpackBacktestResult(packed: PackedBacktestResult, barCount: number): BacktestResult {
  if (packed.bars !== barCount) malformed(`bars is ${packed.bars}, expected ${barCount}`);
  const { equity, metrics } = packed;
  // Realm-independent, because both arrays were built by the worker thread's Float64Array.
  if (Object.prototype.toString.call(equity) !== '[object Float64Array]' || equity.length !== barCount) malformed('equity does not have one value per bar');
  const columns = packed.fills;
  if (Object.prototype.toString.call(columns) !== '[object Float64Array]' || columns.length % FILL_STRIDE !== 0) {
    malformed('fills are not a Float64Array of whole fills');
  }
  if (!Array.isArray(packed.logs)) malformed('logs are not an array');

  return {
    bars: barCount,
    fills: unpackFills(columns),
    equity: new Float64Array(equity.buffer, equity.byteOffset, equity.length),
    metrics: {
      final_equity: metrics.final_equity,
      total_return: metrics.total_return,
      cagr: metrics.cagr,
      volatility: metrics.volatility,
      sharpe: metrics.sharpe,
      max_drawdown: metrics.max_drawdown,
      fills: metrics.fills,
      exposure: metrics.exposure,
    },
    logs: Array.from(packed.logs, (line) => String(line)),
  };
}
