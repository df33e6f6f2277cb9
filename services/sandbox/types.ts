/**
 * Plain data types shared by the sandbox's host side: the bars a strategy runs over, the orders
 * it reports, and the backtest result. Everything here is plain data so that it can cross the
 * piscina thread boundary and the msgpackr-encoded envelope unchanged.
 */
import type { BarColumns, Fill } from '../../protocol/bars';

/** Daily OHLCV bars as parallel columns of equal length; `time` is epoch ms (UTC) of each date. */
export type Bars = BarColumns;

export const BAR_COLUMNS = ['time', 'open', 'high', 'low', 'close', 'volume'] as const;

/**
 * Order kinds as the in-isolate runner encodes them (see runner-source.ts). `quantity` is a signed
 * number of units (positive buys); `targetPercent` is the fraction of equity to hold, 0..1.
 */
export const ORDER_KIND_QUANTITY = 0;
export const ORDER_KIND_TARGET_PERCENT = 1;

export type OrderKind = 'quantity' | 'targetPercent';

/** An order the strategy placed while handling bar `bar`; it fills at the open of `bar + 1`. */
export interface StrategyOrder {
  bar: number;
  kind: OrderKind;
  value: number;
}

/**
 * The runner's own view of the account after the last bar: its mirror of the fill rules. The
 * host compares it with its re-derivation from the orders and rejects the run on any difference.
 */
export interface RunnerAccount {
  cash: number;
  position: number;
  fills: number;
}

/** What a strategy run inside an isolate reports back: orders, captured log lines, account. */
export interface StrategyOutput {
  orders: StrategyOrder[];
  logs: string[];
  account: RunnerAccount;
}

export interface SimulationOptions {
  /** Starting cash, in the bars' currency. */
  cash: number;
  /** Commission as a fraction of traded notional (0.001 is 0.1%). */
  commission: number;
}

export type { Fill };

export interface Simulation {
  fills: Fill[];
  /** Equity marked at every bar's close. */
  equity: Float64Array;
  /** Position held at the end of the last bar, after that bar's fills (0 without bars). */
  finalPosition: number;
  /** Number of bars that end holding a non-zero position. */
  exposedBars: number;
  /** Cash after the last bar. */
  cash: number;
}

export interface Metrics {
  final_equity: number;
  total_return: number;
  cagr: number;
  volatility: number;
  sharpe: number;
  max_drawdown: number;
  fills: number;
  exposure: number;
}

export interface BacktestResult {
  /** Number of bars the strategy ran over. */
  bars: number;
  fills: Fill[];
  equity: Float64Array;
  metrics: Metrics;
  logs: string[];
}

/** A strategy, its data and its parameters, as `sandbox.run` receives them. */
export interface BacktestRequest {
  source: string;
  filename: string;
  bars: Bars;
  params: Record<string, number>;
  options?: BacktestOptions;
}

export interface BacktestOptions {
  cash?: number;
  commission?: number;
  memoryLimitMb?: number;
  timeoutMs?: number;
  cpuTimeMs?: number;
  maxOrders?: number;
  maxLogLines?: number;
}
