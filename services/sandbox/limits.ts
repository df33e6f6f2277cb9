/**
 * Resource limits of one strategy run, their defaults and bounds, and the errors raised when a
 * run reaches one. Every limit error names the limit, its value and the bar index the strategy
 * had reached, unless the limit hit before the first bar.
 */
import { BacktestrError, type ErrorCode } from '../../protocol/errors';
import type { BacktestOptions } from './types';

export interface SandboxLimits {
  /** V8 heap limit of the isolate, in MB (isolated-vm `memoryLimit`). */
  memoryLimitMb: number;
  /** Wall-clock time a whole run may take, from isolate creation to result, in ms. */
  timeoutMs: number;
  /** CPU time the isolate may use over the whole run, in ms. */
  cpuTimeMs: number;
  /** Orders a run may place; the order that would exceed it ends the run. */
  maxOrders: number;
  /** Lines `ctx.log` may write; the line that would exceed it ends the run. */
  maxLogLines: number;
}

/**
 * The CPU limit sits below the wall-clock limit so that a busy strategy reports E_LIMIT_CPU,
 * while a run that waits (for example on a loaded machine) still ends at the wall-clock limit.
 */
export const DEFAULT_LIMITS: Readonly<SandboxLimits> = Object.freeze({
  memoryLimitMb: 512,
  timeoutMs: 30_000,
  cpuTimeMs: 20_000,
  maxOrders: 100_000,
  maxLogLines: 1_000,
});

/**
 * Accepted ranges of each option. isolated-vm 7 rejects a memory limit under 8 MB. The upper
 * bounds keep one request from holding a worker thread or the machine's memory for long.
 */
export const LIMIT_BOUNDS = {
  memoryLimitMb: { min: 8, max: 4096 },
  timeoutMs: { min: 10, max: 600_000 },
  cpuTimeMs: { min: 10, max: 600_000 },
  maxOrders: { min: 1, max: 1_000_000 },
  maxLogLines: { min: 0, max: 100_000 },
  cash: { min: 1e-6, max: 1e15 },
  commission: { min: 0, max: 0.1 },
} as const;

export const DEFAULT_CASH = 100_000;
export const DEFAULT_COMMISSION = 0;

/** Returns `defaults` with the limits set in `options` applied over them. */
export function resolveLimits(options: BacktestOptions | undefined, defaults: Readonly<SandboxLimits> = DEFAULT_LIMITS): SandboxLimits {
  return {
    memoryLimitMb: options?.memoryLimitMb ?? defaults.memoryLimitMb,
    timeoutMs: options?.timeoutMs ?? defaults.timeoutMs,
    cpuTimeMs: options?.cpuTimeMs ?? defaults.cpuTimeMs,
    maxOrders: options?.maxOrders ?? defaults.maxOrders,
    maxLogLines: options?.maxLogLines ?? defaults.maxLogLines,
  };
}

export type LimitName = 'memory' | 'time' | 'cpu' | 'orders' | 'logs';

const LIMIT_INFO: Record<LimitName, { code: ErrorCode; option: keyof SandboxLimits; text: string; unit: string }> = {
  memory: { code: 'E_LIMIT_MEMORY', option: 'memoryLimitMb', text: 'memory limit', unit: ' MB' },
  time: { code: 'E_LIMIT_TIME', option: 'timeoutMs', text: 'wall-clock time limit', unit: ' ms' },
  cpu: { code: 'E_LIMIT_CPU', option: 'cpuTimeMs', text: 'CPU time limit', unit: ' ms' },
  orders: { code: 'E_LIMIT_ORDERS', option: 'maxOrders', text: 'order limit', unit: ' orders' },
  logs: { code: 'E_LIMIT_LOGS', option: 'maxLogLines', text: 'log line limit', unit: ' lines' },
};

/**
 * How well the bar of a limit error is known: `exact` when the runner or the isolate said which
 * bar was running, `at-least` when the isolate was disposed and only the last bar the runner
 * reported is known, so the run had reached that bar or a later one.
 */
export type BarPrecision = 'exact' | 'at-least';

/**
 * Builds the error for a run that reached `limit`; `bar` is -1 when no bar was reached (the
 * limit hit while the strategy loaded or in `init`). With precision `at-least` the details carry
 * `barExact: false`.
 */
export function limitError(limit: LimitName, limits: SandboxLimits, bar: number, precision: BarPrecision = 'exact'): BacktestrError {
  const info = LIMIT_INFO[limit];
  const value = limits[info.option];
  const details: Record<string, string | number | boolean> = { limit: info.option, value };
  let where = '';
  if (bar >= 0) {
    details.bar = bar;
    where = precision === 'exact' ? ` at bar ${bar}` : ` at bar ${bar} or later`;
    if (precision === 'at-least') details.barExact = false;
  }
  return new BacktestrError(
    info.code,
    `strategy run stopped${where}: ${info.text} of ${value}${info.unit} reached (raise options.${info.option} if the strategy needs more)`,
    details,
  );
}
