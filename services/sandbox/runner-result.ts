/**
 * Checks the plain result object that the in-isolate runner returns and turns it into orders and
 * logs, or into the BacktestrError it stands for. The runner is trusted code, but its result has
 * crossed from the isolate and a thread, so every field is checked again before use.
 */
import { BacktestrError, type ErrorDetails } from '../../protocol/errors';
import { locateInStack } from './error-location';
import { limitError, type LimitName, type SandboxLimits } from './limits';
import { ORDER_KIND_QUANTITY, ORDER_KIND_TARGET_PERCENT, type StrategyOrder, type StrategyOutput } from './types';

export interface ResultContext {
  filename: string;
  barCount: number;
  limits: SandboxLimits;
}

function invalid(what: string): never {
  throw new BacktestrError('E_RESULT_INVALID', `strategy runner returned an invalid result: ${what}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Realm-independent Float64Array check: isolated-vm builds copies with the main realm's
 * constructors, which differ from those of a vm context (for example a jest test environment).
 */
function isFloat64Array(value: unknown): value is Float64Array {
  return ArrayBuffer.isView(value) && Object.prototype.toString.call(value) === '[object Float64Array]';
}

function readString(record: Record<string, unknown>, key: string): string {
  const value = record[key];
  if (typeof value !== 'string') invalid(`${key} is not a string`);
  return value;
}

/** Returns the strategy's orders and logs, or throws the error that the result reports. */
export function interpretRunnerResult(raw: unknown, context: ResultContext): StrategyOutput {
  if (!isRecord(raw)) invalid('not an object');

  switch (raw.status) {
    case 'ok':
      return readOutput(raw, context);
    case 'limit':
      return throwLimit(raw, context);
    case 'missing-onbar':
      throw new BacktestrError('E_STRATEGY_COMPILE', `${context.filename}: the strategy must declare function onBar(ctx)`, { file: context.filename });
    case 'error':
      throw strategyError(raw, context.filename);
    default:
      return invalid('unknown status');
  }
}

function throwLimit(raw: Record<string, unknown>, context: ResultContext): never {
  const limit = raw.limit;
  const bar = raw.bar;
  if (limit !== 'orders' && limit !== 'logs') invalid('unknown limit');
  if (typeof bar !== 'number' || !Number.isInteger(bar) || bar < -1 || bar >= context.barCount) invalid('limit bar out of range');
  throw limitError(limit as LimitName, context.limits, bar);
}

function strategyError(raw: Record<string, unknown>, filename: string): BacktestrError {
  const phase = readString(raw, 'phase');
  const name = readString(raw, 'name');
  const message = readString(raw, 'message');
  const stack = readString(raw, 'stack');
  const bar = raw.bar;
  if (phase !== 'load' && phase !== 'init' && phase !== 'bar') invalid('unknown error phase');
  if (typeof bar !== 'number' || !Number.isInteger(bar)) invalid('error bar is not an integer');

  const details: ErrorDetails = { file: filename, phase };
  const location = locateInStack(stack, filename);
  let where = filename;
  if (location !== null) {
    details.line = location.line;
    details.column = location.column;
    where += `:${location.line}:${location.column}`;
  }
  let when = phase === 'load' ? 'while loading the strategy' : 'in init';
  if (phase === 'bar') {
    details.bar = bar;
    when = `at bar ${bar}`;
  }
  return new BacktestrError('E_STRATEGY_RUNTIME', `${where}: ${name}: ${message} (${when})`, details);
}

function readOutput(raw: Record<string, unknown>, context: ResultContext): StrategyOutput {
  const packed = raw.orders;
  const logs = raw.logs;
  if (raw.bars !== context.barCount) invalid('bar count differs from the input');
  if (!isFloat64Array(packed) || packed.length % 3 !== 0) invalid('orders are not a Float64Array of triples');
  if (!Array.isArray(logs) || logs.length > context.limits.maxLogLines) invalid('logs are not an array within the log limit');
  if (packed.length / 3 > context.limits.maxOrders) invalid('more orders than the order limit');

  const orders: StrategyOrder[] = new Array(packed.length / 3);
  let previousBar = 0;
  for (let k = 0; k < orders.length; k++) {
    const bar = packed[k * 3];
    const kind = packed[k * 3 + 1];
    const value = packed[k * 3 + 2];
    if (!Number.isInteger(bar) || bar < previousBar || bar >= context.barCount) invalid(`order ${k} has bar ${bar}`);
    previousBar = bar;
    if (kind === ORDER_KIND_QUANTITY) {
      if (!Number.isFinite(value) || value === 0) invalid(`order ${k} has quantity ${value}`);
      orders[k] = { bar, kind: 'quantity', value };
    } else if (kind === ORDER_KIND_TARGET_PERCENT) {
      if (!(value >= 0 && value <= 1)) invalid(`order ${k} has target fraction ${value}`);
      orders[k] = { bar, kind: 'targetPercent', value };
    } else {
      invalid(`order ${k} has kind ${kind}`);
    }
  }

  const lines: string[] = new Array(logs.length);
  for (let k = 0; k < logs.length; k++) {
    const line: unknown = logs[k];
    if (typeof line !== 'string') invalid(`log line ${k} is not a string`);
    lines[k] = line;
  }
  return { orders, logs: lines };
}
