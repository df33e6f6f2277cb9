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
