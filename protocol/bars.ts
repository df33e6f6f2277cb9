/**
 * Shapes of market data and backtest fills as they travel between processes.
 */

/**
 * Daily OHLCV bars as parallel Float64Array columns of equal length, the form in which bars
 * travel between storage, the kernel and the sandbox. `time` is epoch milliseconds (UTC midnight)
 * of each bar's date.
 */
export interface BarColumns {
  time: Float64Array;
  open: Float64Array;
  high: Float64Array;
  low: Float64Array;
  close: Float64Array;
  volume: Float64Array;
}

/** One filled order, as the sandbox computes it and storage keeps it. */
export interface Fill {
  /** Index of the bar on which the order filled. */
  bar: number;
  /** Epoch milliseconds (UTC) of that bar. */
  time: number;
  side: 'buy' | 'sell';
  /** Units traded, always positive. */
  qty: number;
  price: number;
  /** Commission paid on this fill, in cash. */
  commission: number;
}
