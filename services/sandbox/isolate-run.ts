/**
 * Runs one strategy in a fresh isolated-vm isolate and returns the runner's plain result.
 *
 * Nothing from the host enters the isolate except copies: the bar columns, the parameters and
 * the settings cross as ExternalCopy data, and the result comes back as a copy. No Reference, no
 * host callback and no SharedArrayBuffer is ever passed in. The isolate is disposed after every
 * run, whatever its outcome.
 *
 * Limits: the wall-clock limit is passed as the `timeout` of every call into the isolate and is
 * backed by a timer that disposes the isolate, because isolated-vm 7 converts a thrown value
 * outside that timeout (a getter on a thrown object could spin forever). The CPU limit is
 * checked by polling `isolate.cpuTime`. The memory limit is V8's heap limit for the isolate.
 */
import { writeSync } from 'node:fs';
import ivm from 'isolated-vm';
import { BacktestrError, type ErrorDetails } from '../../protocol/errors';
import { prepareStrategyScript, WRAPPER_LINE_OFFSET } from './compile';
import { locateCompileError, locateInStack } from './error-location';
import { limitError, type SandboxLimits } from './limits';
import { RUNNER_FILENAME, RUNNER_SOURCE } from './runner-source';
import type { Bars } from './types';

export interface StrategyJob {
  source: string;
  filename: string;
  bars: Bars;
  params: Record<string, number>;
  cash: number;
  commission: number;
  limits: SandboxLimits;
}

/** Messages of isolated-vm 7.0.1 that tell a limit apart from a failure of the run itself. */
const IVM_TIMEOUT_MESSAGE = 'Script execution timed out.';
const IVM_MEMORY_MESSAGE_PART = 'memory limit';

/** How often the CPU time of the isolate is sampled, in ms. */
const CPU_POLL_INTERVAL_MS = 10;

/** Extra time the backstop timer grants after the wall-clock limit before disposing, in ms. */
const BACKSTOP_GRACE_MS = 200;

/** Time allowed for reading the bar index after a timeout, in ms. */
const PROGRESS_TIMEOUT_MS = 100;

/** 32-bit FNV-1a of the source text: the seed of Math.random, so a strategy replays exactly. */
export function randomSeedOf(source: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < source.length; i++) {
    hash ^= source.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash | 0;
}

/** Watches one isolate: disposes it when the CPU or the wall-clock limit is reached. */
class Watchdog {
  private readonly startedAt = performance.now();
  private reason: 'cpu' | 'time' | null = null;
  private readonly poller: NodeJS.Timeout;
  private readonly backstop: NodeJS.Timeout;

  constructor(
    private readonly isolate: ivm.Isolate,
    private readonly limits: SandboxLimits,
  ) {
    const cpuLimitNs = BigInt(limits.cpuTimeMs) * 1_000_000n;
    this.poller = setInterval(() => {
      if (!this.isolate.isDisposed && this.isolate.cpuTime > cpuLimitNs) this.stopIsolate('cpu');
    }, CPU_POLL_INTERVAL_MS);
    this.backstop = setTimeout(() => this.stopIsolate('time'), limits.timeoutMs + BACKSTOP_GRACE_MS);
  }

  /** Wall-clock time left for the next call into the isolate, in ms (at least 1). */
  remainingMs(): number {
    return Math.max(1, Math.ceil(this.limits.timeoutMs - (performance.now() - this.startedAt)));
  }

  stop(): void {
    clearInterval(this.poller);
    clearTimeout(this.backstop);
  }

  private stopIsolate(reason: 'cpu' | 'time'): void {
    if (this.isolate.isDisposed) return;
    this.reason = reason;
    this.isolate.dispose();
  }

  /**
   * Maps an error thrown by a call into the isolate to the limit it stands for. Any other error
   * after the strategy started comes from strategy code, because the runner catches everything
   * in its own calls: a rejected promise that isolated-vm reports after the call, or a throw
   * that escaped the wrapper.
   */
  async explain(error: unknown, context: ivm.Context | null, strategyStarted: boolean, filename: string): Promise<BacktestrError> {
    if (this.reason !== null) return limitError(this.reason, this.limits, -1);
    if (error instanceof BacktestrError) return error;

    const message = errorFields(error)?.message ?? '';
    if (message === IVM_TIMEOUT_MESSAGE) return limitError('time', this.limits, await this.readProgress(context));
    if (message.includes(IVM_MEMORY_MESSAGE_PART) || this.isolate.isDisposed) return limitError('memory', this.limits, -1);
    if (strategyStarted) return asyncStrategyError(error, filename);
    return new BacktestrError('E_INTERNAL', 'strategy isolate failed', {}, { cause: error });
  }

  /** Returns the bar index the runner reached, or -1 when the isolate cannot tell any more. */
  private async readProgress(context: ivm.Context | null): Promise<number> {
    if (context === null || this.isolate.isDisposed) return -1;
    try {
      const bar: unknown = await context.evalClosure('return __backtestrProgress()', [], { timeout: PROGRESS_TIMEOUT_MS, result: { copy: true } });
      return typeof bar === 'number' && Number.isInteger(bar) && bar >= 0 ? bar : -1;
    } catch {
      // Strategy microtasks may still be spinning after the timeout, so the bar stays unknown.
      return -1;
    }
  }
}

/**
 * isolated-vm calls this when V8 has lost control of an isolate. Its documentation asks the
 * embedder to end the process; the kernel then restarts the sandbox service.
 */
function onCatastrophicError(message: string): void {
  writeSync(2, `sandbox: isolated-vm catastrophic error, aborting: ${message}\n`);
  process.abort();
}

function compileError(error: unknown, filename: string): BacktestrError {
  const fields = errorFields(error);
  if (fields === null || fields.name !== 'SyntaxError') return new BacktestrError('E_INTERNAL', 'strategy compilation failed', {}, { cause: error });
  const { text, location } = locateCompileError(fields.message, filename);
  if (location === null) return new BacktestrError('E_STRATEGY_COMPILE', `${filename}: SyntaxError: ${text}`, { file: filename });
  return new BacktestrError('E_STRATEGY_COMPILE', `${filename}:${location.line}:${location.column}: SyntaxError: ${text}`, {
    file: filename,
    line: location.line,
    column: location.column,
  });
}

const MAX_MESSAGE_LENGTH = 4000;

interface ErrorFields {
  name: string;
  message: string;
  stack: string;
}

/**
 * Reads name, message and stack of an error from isolated-vm. The check is realm-independent
 * (`instanceof Error` fails when this module runs in a vm context such as a jest environment,
 * because isolated-vm builds its errors with the main realm's constructors).
 */
function errorFields(error: unknown): ErrorFields | null {
  if (Object.prototype.toString.call(error) !== '[object Error]') return null;
  const { name, message, stack } = error as Error;
  return { name: String(name), message: String(message), stack: typeof stack === 'string' ? stack : '' };
}

function asyncStrategyError(error: unknown, filename: string): BacktestrError {
  const fields = errorFields(error);
  const name = fields?.name ?? 'Error';
  const message = (fields?.message ?? String(error)).slice(0, MAX_MESSAGE_LENGTH);
  const location = fields === null ? null : locateInStack(fields.stack, filename);
  const details: ErrorDetails = { file: filename, phase: 'async' };
  let where = filename;
  if (location !== null) {
    details.line = location.line;
    details.column = location.column;
    where += `:${location.line}:${location.column}`;
  }
  return new BacktestrError('E_STRATEGY_RUNTIME', `${where}: ${name}: ${message} (in code that ran after onBar returned, such as a promise callback)`, details);
}

function copyInto<T>(value: T): ivm.Copy<T> {
  return new ivm.ExternalCopy(value).copyInto({ release: true });
}

/** Compiles and runs the strategy in a new isolate; returns the runner's result, unchecked. */
export async function executeStrategy(job: StrategyJob): Promise<unknown> {
  const script = prepareStrategyScript(job.source, job.filename);
  const isolate = new ivm.Isolate({ memoryLimit: job.limits.memoryLimitMb, onCatastrophicError });
  const watchdog = new Watchdog(isolate, job.limits);
  let context: ivm.Context | null = null;
  let strategyStarted = false;

  try {
    context = await isolate.createContext();
    const runner = await isolate.compileScript(RUNNER_SOURCE, { filename: RUNNER_FILENAME });
    await runner.run(context, { timeout: watchdog.remainingMs(), release: true });

    const { bars } = job;
    const settings = { cash: job.cash, commission: job.commission, maxOrders: job.limits.maxOrders, maxLogLines: job.limits.maxLogLines, seed: randomSeedOf(job.source) };
    const columns = [bars.time, bars.open, bars.high, bars.low, bars.close, bars.volume].map((column) => copyInto(column));
    await context.evalClosure('__backtestrSetup($0, $1, $2, $3, $4, $5, $6, $7)', [...columns, copyInto({ ...job.params }), copyInto(settings)], {
      timeout: watchdog.remainingMs(),
    });

    let strategy: ivm.Script;
    try {
      strategy = await isolate.compileScript(script, { filename: job.filename, lineOffset: WRAPPER_LINE_OFFSET });
    } catch (error) {
      throw compileError(error, job.filename);
    }
    strategyStarted = true;
    await strategy.run(context, { timeout: watchdog.remainingMs(), release: true });

    return await context.evalClosure('return __backtestrRun()', [], { timeout: watchdog.remainingMs(), result: { copy: true } });
  } catch (error) {
    throw await watchdog.explain(error, context, strategyStarted, job.filename);
  } finally {
    watchdog.stop();
    if (!isolate.isDisposed) isolate.dispose();
  }
}
