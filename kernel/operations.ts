/**
 * Operations the kernel itself serves to clients. `backtest.run` composes three routed calls
 * (bars from storage, the run in the sandbox, the result back to storage), so that the sandbox
 * never talks to storage and a client never stores a result it computed itself.
 */
import crypto from 'node:crypto';
import type { BarColumns } from '../protocol/bars';
import { BacktestrError } from '../protocol/errors';
import { parse, s } from '../protocol/schema';

const SYMBOL_PATTERN = /^[A-Za-z0-9._^-]{1,32}$/;
const DATE_PATTERN = /^\d{4}-\d{2}-\d{2}$/;
const PARAM_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

export const RUN_BACKTEST_PARAMS = s.object({
  source: s.string(1024 * 1024),
  filename: s.string(128),
  symbol: s.string(32, SYMBOL_PATTERN),
  from: s.string(10, DATE_PATTERN),
  to: s.string(10, DATE_PATTERN),
  params: s.record(s.number(), 64, PARAM_NAME_PATTERN),
  // Ranges of each option are the sandbox's to enforce (services/sandbox/limits.ts); the kernel
  // checks only the shape, so the two cannot disagree about a bound.
  options: s.object({
    cash: s.number(),
    commission: s.number(),
    memoryLimitMb: s.number(),
    timeoutMs: s.number(),
    cpuTimeMs: s.number(),
    maxOrders: s.number(),
    maxLogLines: s.number(),
  }, ['cash', 'commission', 'memoryLimitMb', 'timeoutMs', 'cpuTimeMs', 'maxOrders', 'maxLogLines']),
}, ['from', 'to', 'params', 'options']);

export interface RunBacktestParams {
  source: string;
  filename: string;
  symbol: string;
  from?: string;
  to?: string;
  params?: Record<string, number>;
  options?: Record<string, number>;
}

interface BarsColumns extends BarColumns {
  symbol: string;
}

interface SandboxResult {
  bars: number;
  fills: unknown[];
  equity: Float64Array | Uint8Array;
  metrics: Record<string, number>;
  logs: string[];
}

export type RouteAsKernel = (method: string, params: unknown) => Promise<unknown>;

export async function runBacktest(route: RouteAsKernel, rawParams: unknown): Promise<Record<string, unknown>> {
  const request = parse<RunBacktestParams>(RUN_BACKTEST_PARAMS, rawParams, 'params');

  const barsQuery: Record<string, string> = { symbol: request.symbol };
  if (request.from) barsQuery.from = request.from;
  if (request.to) barsQuery.to = request.to;
  const bars = (await route('storage.queryBars', barsQuery)) as BarsColumns;
  const barColumns = { time: bars.time, open: bars.open, high: bars.high, low: bars.low, close: bars.close, volume: bars.volume };
  if (barColumns.time.byteLength === 0) throw new BacktestrError('E_NOT_FOUND', `no bars for ${request.symbol} in the requested range`, { symbol: request.symbol });

  const runParams: Record<string, unknown> = { source: request.source, filename: request.filename, bars: barColumns, params: request.params ?? {} };
  if (request.options) runParams.options = request.options;
  const result = (await route('sandbox.run', runParams)) as SandboxResult;

  const strategySha256 = crypto.createHash('sha256').update(request.source).digest('hex');
  const saved = (await route('storage.saveBacktest', {
    strategyFile: request.filename,
    strategySha256,
    symbol: request.symbol,
    params: request.params ?? {},
    metrics: result.metrics,
    fills: result.fills,
    equity: result.equity,
    time: barColumns.time,
  })) as { id: number | string };

  return { id: saved.id, symbol: request.symbol, strategyFile: request.filename, strategySha256, bars: result.bars, metrics: result.metrics, fills: result.fills.length, logs: result.logs };
}
