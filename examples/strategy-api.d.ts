/**
 * Types of the BackTestr strategy API, for editors and type checkers. A strategy file is a
 * script, not a module: it declares `function onBar(ctx: StrategyContext)` and optionally
 * `function init(ctx: StrategyContext)`, and can use these global types without importing them.
 * See docs/strategy-api.md for the rules of execution, the limits and the errors.
 */

/** The bar the strategy is handling. Every field is NaN (and `index` is -1) during `init`. */
interface StrategyBar {
  /** 0-based index of the bar in the series. */
  readonly index: number;
  /** Epoch milliseconds (UTC) of the bar's date. */
  readonly time: number;
  readonly open: number;
  readonly high: number;
  readonly low: number;
  readonly close: number;
  readonly volume: number;
}

/**
 * Bars 0..t by absolute index, where t is the current bar. Reading an index above t throws a
 * RangeError: later bars cannot be read.
 */
interface StrategyHistory {
  /** Number of bars available so far (t + 1). */
  readonly length: number;
  time(index: number): number;
  open(index: number): number;
  high(index: number): number;
  low(index: number): number;
  close(index: number): number;
  volume(index: number): number;
  /** A copy of the last `count` closes, oldest first (fewer when fewer bars exist). */
  closes(count: number): Float64Array;
}

interface StrategyContext {
  /** The run's parameters, frozen. A parameter that the run does not set is undefined. */
  readonly params: Readonly<Record<string, number | undefined>>;
  /** A plain object the strategy may use to keep state between bars. */
  readonly state: Record<string, unknown>;
  readonly bar: StrategyBar;
  readonly history: StrategyHistory;

  /** Units held now, after this bar's fills at its open. Never negative (long/flat only). */
  readonly position: number;
  readonly cash: number;
  /** cash + position * close of the current bar. */
  readonly equity: number;

  /** Value `barsAgo` bars before the current one (default 0); NaN before the first bar. */
  time(barsAgo?: number): number;
  open(barsAgo?: number): number;
  high(barsAgo?: number): number;
  low(barsAgo?: number): number;
  close(barsAgo?: number): number;
  volume(barsAgo?: number): number;

  /** Indicators over closes up to and including the current bar; NaN until enough bars exist. */
  sma(period: number): number;
  ema(period: number): number;
  /** Wilder's relative strength index, 0..100. */
  rsi(period: number): number;
  /** Population standard deviation of the last `period` closes. */
  stddev(period: number): number;
  /** Wilder's average true range over highs, lows and closes. */
  atr(period: number): number;
  /** Highest of the last `period` values of `field` (default 'close'). */
  highest(period: number, field?: 'close' | 'open' | 'high' | 'low' | 'volume'): number;
  /** Lowest of the last `period` values of `field` (default 'close'). */
  lowest(period: number, field?: 'close' | 'open' | 'high' | 'low' | 'volume'): number;

  /** Market order for `qty` units: positive buys, negative sells; fills at the next bar's open. */
  order(qty: number): void;
  /** Market buy of `qty` > 0 units. */
  buy(qty: number): void;
  /** Market sell of `qty` > 0 units (at most the position is sold). */
  sell(qty: number): void;
  /** Trades toward holding `fraction` (0..1) of equity at the next bar's open. */
  targetPercent(fraction: number): void;

  /** Adds one line to the run's log; values are printed like JSON. */
  log(...values: unknown[]): void;
}
