/**
 * Checks the plain result object that the in-isolate runner returns and turns it into orders,
 * logs and the runner's account, or into the BacktestrError it stands for. The runner is trusted
 * code, but its result has crossed from the isolate and a thread, so it is checked like any
 * outside input: exact keys, data properties only, types, ranges and lengths.
 *
 * isolated-vm delivers the result as a structured copy, which holds no functions, getters or
 * prototypes of the isolate, so reading it runs no strategy code.
 */
import { BacktestrError, type ErrorDetails } from '../../protocol/errors';
import { API_HINT } from './compile';
import { locateInStack } from './error-location';
import { MAX_ERROR_TEXT_LENGTH } from './isolate-errors';
import { limitError, type LimitName, type SandboxLimits } from './limits';
import { ORDER_KIND_QUANTITY, ORDER_KIND_TARGET_PERCENT, type RunnerAccount, type StrategyOrder, type StrategyOutput } from './types';

export interface ResultContext {
  filename: string;
  barCount: number;
  limits: SandboxLimits;
}

/** Maximum length of one log line, in characters; the runner cuts lines at 2,000 plus "...". */
const MAX_LOG_LINE_LENGTH = 2003;

function invalid(what: string): never {
  throw new BacktestrError('E_RESULT_INVALID', `strategy runner returned an invalid result: ${what}`, { reason: 'schema' });
}

/**
 * Returns `value` as a record after checking that it is a plain object whose own keys are all in
 * `allowed` and are data properties. Realm-independent, because isolated-vm builds copies with
 * the main realm's constructors, which differ from those of a vm context (a jest environment).
 */
function readRecord(value: unknown, allowed: readonly string[], what: string): Record<string, unknown> {
  if (Object.prototype.toString.call(value) !== '[object Object]') invalid(`${what} is not an object`);
  const record = value as Record<string, unknown>;
  for (const key of Reflect.ownKeys(record)) {
    if (typeof key !== 'string' || !allowed.includes(key)) invalid(`${what} has an unexpected key`);
    const descriptor = Object.getOwnPropertyDescriptor(record, key);
    if (descriptor === undefined || !('value' in descriptor)) invalid(`${what}.${key} is not a data property`);
  }
  return record;
}

export function isFloat64Array(value: unknown): value is Float64Array {
  return ArrayBuffer.isView(value) && Object.prototype.toString.call(value) === '[object Float64Array]';
}

function readString(record: Record<string, unknown>, key: string, maxLength: number): string {
  const value = record[key];
  if (typeof value !== 'string' || value.length > maxLength + 3) invalid(`${key} is not a string of at most ${maxLength} characters`);
  return value;
}

const STATUS_KEYS: Record<string, readonly string[]> = {
  ok: ['status', 'bars', 'orders', 'logs', 'account'],
  limit: ['status', 'limit', 'bar'],
  'missing-onbar': ['status'],
  error: ['status', 'phase', 'bar', 'name', 'message', 'stack'],
};

/** Returns the strategy's orders, logs and account, or throws the error that the result reports. */
export function interpretRunnerResult(raw: unknown, context: ResultContext): StrategyOutput {
  const status = Object.prototype.toString.call(raw) === '[object Object]' ? (raw as Record<string, unknown>).status : undefined;
  if (typeof status !== 'string' || !Object.hasOwn(STATUS_KEYS, status)) invalid('unknown status');
  const record = readRecord(raw, STATUS_KEYS[status], 'result');

  switch (status) {
    case 'ok':
      return readOutput(record, context);
    case 'limit':
      return throwLimit(record, context);
    case 'missing-onbar':
      throw new BacktestrError('E_STRATEGY_COMPILE', `${context.filename}: the strategy must declare function onBar(ctx)`, { file: context.filename });
    default:
      throw strategyError(record, context);
  }
}

function throwLimit(raw: Record<string, unknown>, context: ResultContext): never {
  const limit = raw.limit;
  const bar = raw.bar;
  if (limit !== 'orders' && limit !== 'logs') invalid('unknown limit');
  if (typeof bar !== 'number' || !Number.isInteger(bar) || bar < -1 || bar >= context.barCount) invalid('limit bar out of range');
  throw limitError(limit as LimitName, context.limits, bar);
}

/** Global names that code written for Node or a bundler reaches for; the message points at the API. */
const MODULE_GLOBALS = /^(require|module|exports|process|__dirname|__filename|Buffer|setTimeout|setInterval|fetch) is not defined$/;

function strategyError(raw: Record<string, unknown>, context: ResultContext): BacktestrError {
  const { filename } = context;
  const phase = readString(raw, 'phase', 16);
  const name = readString(raw, 'name', 200);
  const message = readString(raw, 'message', MAX_ERROR_TEXT_LENGTH);
  const stack = readString(raw, 'stack', MAX_ERROR_TEXT_LENGTH);
  const bar = raw.bar;
  if (phase !== 'load' && phase !== 'init' && phase !== 'bar') invalid('unknown error phase');
  if (typeof bar !== 'number' || !Number.isInteger(bar) || bar < -1 || bar >= context.barCount) invalid('error bar out of range');

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
  const hint = name === 'ReferenceError' && MODULE_GLOBALS.test(message) ? `; ${API_HINT}` : '';
  return new BacktestrError('E_STRATEGY_RUNTIME', `${where}: ${name}: ${message} (${when})${hint}`, details);
}

function readAccount(value: unknown): RunnerAccount {
  const record = readRecord(value, ['cash', 'position', 'fills'], 'account');
  const { cash, position, fills } = record;
  if (typeof cash !== 'number' || !Number.isFinite(cash) || cash < 0) invalid('account cash is not a finite number >= 0');
  if (typeof position !== 'number' || !Number.isFinite(position) || position < 0) invalid('account position is not a finite number >= 0');
  if (typeof fills !== 'number' || !Number.isInteger(fills) || fills < 0) invalid('account fills is not an integer >= 0');
  return { cash, position, fills };
}

/** The position of a piece of the order book in the whole run. */
export interface OrderPosition {
  /** Bar of the run's previous order (0 before the first order). */
  firstBar: number;
  /** Index of the piece's first order in the run. */
  firstIndex: number;
}

/**
 * Returns the orders of `packed`, the runner's triples of bar, kind and value. Each order's bar
 * must be an integer below `barCount` and not before the previous order's bar, and its kind and
 * value must be valid. Raises E_RESULT_INVALID (reason `schema`) otherwise.
 */
export function readOrders(packed: Float64Array, barCount: number, position: OrderPosition): StrategyOrder[] {
  if (packed.length % 3 !== 0) invalid('orders are not a Float64Array of triples');
  const orders: StrategyOrder[] = new Array(packed.length / 3);
  let previousBar = position.firstBar;
  for (let k = 0; k < orders.length; k++) {
    const index = position.firstIndex + k;
    const bar = packed[k * 3];
    const kind = packed[k * 3 + 1];
    const value = packed[k * 3 + 2];
    if (!Number.isInteger(bar) || bar < previousBar || bar >= barCount) invalid(`order ${index} has bar ${bar}`);
    previousBar = bar;
    if (kind === ORDER_KIND_QUANTITY) {
      if (!Number.isFinite(value) || value === 0) invalid(`order ${index} has quantity ${value}`);
      orders[k] = { bar, kind: 'quantity', value };
    } else if (kind === ORDER_KIND_TARGET_PERCENT) {
      if (!(value >= 0 && value <= 1)) invalid(`order ${index} has target fraction ${value}`);
      orders[k] = { bar, kind: 'targetPercent', value };
    } else {
      invalid(`order ${index} has kind ${kind}`);
    }
  }
  return orders;
}

function readOutput(raw: Record<string, unknown>, context: ResultContext): StrategyOutput {
  const packed = raw.orders;
  const logs = raw.logs;
  if (raw.bars !== context.barCount) invalid('bar count differs from the input');
  if (!isFloat64Array(packed) || packed.length % 3 !== 0) invalid('orders are not a Float64Array of triples');
  if (!Array.isArray(logs) || logs.length > context.limits.maxLogLines) invalid('logs are not an array within the log limit');
  if (packed.length / 3 > context.limits.maxOrders) invalid('more orders than the order limit');
  const account = readAccount(raw.account);
  if (account.fills > packed.length / 3) invalid('more fills than orders');

  const orders = readOrders(packed, context.barCount, { firstBar: 0, firstIndex: 0 });

  const lines: string[] = new Array(logs.length);
  for (let k = 0; k < logs.length; k++) {
    const line: unknown = logs[k];
    if (typeof line !== 'string' || line.length > MAX_LOG_LINE_LENGTH) invalid(`log line ${k} is not a string of at most ${MAX_LOG_LINE_LENGTH} characters`);
    lines[k] = line;
  }
  return { orders, logs: lines, account };
}
