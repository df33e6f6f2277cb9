/**
 * Runs one strategy in a fresh isolated-vm isolate and returns the runner's plain result.
 *
 * What crosses into the isolate is a closed list: copies of the bar columns (ExternalCopy,
 * transferred into the isolate's heap, never shared), a copy of the parameters and settings
 * (numbers only), and one host callback that takes a bar index and a copy of the recent orders
 * and returns nothing (the progress report, Watchdog.recordProgress and ExecuteOptions.onProgress).
 * isolated-vm copies its arguments, and the runner does not wait for it. No Reference, no host
 * object and no SharedArrayBuffer is
 * ever passed in. The result comes back as one structured copy of an object that the runner
 * builds from its own closure. The isolate is disposed after every run, whatever its outcome.
 *
 * Limits: the wall-clock limit is passed as the `timeout` of every call into the isolate and is
 * backed by a timer that disposes the isolate. The CPU limit is checked by polling
 * `isolate.cpuTime`. The memory limit is V8's heap limit for the isolate (watchdog.ts). When
 * V8 or isolated-vm loses control of the isolate, the run fails with its limit error without
 * waiting for the isolate any longer (Watchdog.lost).
 */
import ivm from 'isolated-vm';
import { prepareStrategyScript, WRAPPER_LINE_OFFSET } from './compile';
import { compileError } from './isolate-errors';
import type { SandboxLimits } from './limits';
import { prepareIsolate, type PreparedIsolate } from './prepared-isolate';
import type { Bars } from './types';
import { Watchdog, type LostIsolateReason } from './watchdog';

export interface StrategyJob {
  source: string;
  filename: string;
  bars: Bars;
  params: Record<string, number>;
  cash: number;
  commission: number;
  limits: SandboxLimits;
}

export interface ExecuteOptions {
  /** An isolate prepared for this run (prepared-isolate.ts); a new one is made when absent. */
  prepared?: PreparedIsolate;
  /**
   * True when the caller gives up the high, low and volume columns, which only the isolate
   * needs: their buffers then move into the isolate without a copy and are detached here.
   */
  giveUpUnusedColumns?: boolean;
  /**
   * Called when the run ended without its isolate: the isolate's native thread may stay busy or
   * asleep until the process ends, which the caller should log.
   */
  onIsolateLost?: (reason: LostIsolateReason) => void;
  /**
   * Receives each progress report of the runner: the bar reached and the orders placed since the
   * previous report, as copies. Reports come in order, but possibly after the run has ended.
   */
  onProgress?: (bar: unknown, orders: unknown) => void;
  /**
   * Called once the strategy's bar loop has started, on this thread, while the loop runs on the
   * isolate's thread. An error it throws ends the run: the isolate is disposed and the run fails
   * with that error.
   */
  whileRunning?: () => void;
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

function hashText(hash: number, text: string): number {
  let value = hash;
  for (let i = 0; i < text.length; i++) {
    value ^= text.charCodeAt(i);
    value = Math.imul(value, FNV_PRIME);
  }
  // A separator keeps ("ab", "c") and ("a", "bc") apart.
  return Math.imul(value ^ 0xff, FNV_PRIME);
}

/**
 * The seed of Math.random for a run: 32-bit FNV-1a over the run's inputs (source, parameters in
 * key order, cash, commission, and the bar count with the first and last time and close). Equal
 * requests get equal seeds, so a strategy that draws random numbers replays bit for bit. The
 * bars are sampled rather than hashed whole, because hashing 48 MB would cost more than the run.
 */
export function randomSeedOf(job: StrategyJob): number {
  let hash = hashText(FNV_OFFSET, job.source);
  for (const key of Object.keys(job.params).sort()) hash = hashText(hashText(hash, key), String(job.params[key]));
  const { time, close } = job.bars;
  const last = time.length - 1;
  const numbers = [job.cash, job.commission, time.length, time[0], time[last], close[0], close[last]];
  for (const value of numbers) hash = hashText(hash, String(value));
  return hash | 0;
}

/** True when `column` is the whole of its buffer, so moving the buffer moves nothing else. */
function ownsWholeBuffer(column: Float64Array): boolean {
  return column.byteOffset === 0 && column.byteLength === column.buffer.byteLength && column.buffer instanceof ArrayBuffer;
}

/**
 * Copies a column into the isolate. ExternalCopy copies it once outside V8, and `transferIn`
 * hands that copy to the isolate without a second copy. With `giveUp` the host's own buffer is
 * moved instead (`transferOut`), which costs no copy at all and detaches `column`.
 */
function columnInto(column: Float64Array, giveUp: boolean): ivm.Copy<Float64Array> {
  const external = new ivm.ExternalCopy(column, giveUp && ownsWholeBuffer(column) ? { transferOut: true } : {});
  return external.copyInto({ transferIn: true, release: true });
}

/** Compiles and runs the strategy in a new isolate; returns the runner's result, unchecked. */
export async function executeStrategy(job: StrategyJob, options: ExecuteOptions = {}): Promise<unknown> {
  // Module syntax and type stripping are checked before any isolate work.
  const script = prepareStrategyScript(job.source, job.filename);
  const prepared = options.prepared ?? prepareIsolate(job.limits.memoryLimitMb);
  const { isolate, context } = prepared;
  const watchdog = new Watchdog(isolate, job.limits, job.bars.time.length, prepared.catastrophe);
  const phase = { strategyStarted: false };

  try {
    // Promise.race also handles a late rejection of the run after its isolate was lost.
    return await Promise.race([runInIsolate(prepared, script, job, watchdog, options, phase), watchdog.lost]);
  } catch (error) {
    if (watchdog.lostReason !== null) options.onIsolateLost?.(watchdog.lostReason);
    throw await watchdog.explain(error, context, phase.strategyStarted, job.filename);
  } finally {
    watchdog.stop();
    if (!isolate.isDisposed) isolate.dispose();
  }
}

async function runInIsolate(
  prepared: PreparedIsolate,
  script: { code: string; wrapped: string },
  job: StrategyJob,
  watchdog: Watchdog,
  options: ExecuteOptions,
  phase: { strategyStarted: boolean },
): Promise<unknown> {
  const { isolate, context } = prepared;
  const { bars } = job;
  const giveUp = options.giveUpUnusedColumns === true;
  const settings = { cash: job.cash, commission: job.commission, maxOrders: job.limits.maxOrders, maxLogLines: job.limits.maxLogLines, seed: randomSeedOf(job) };
  const columns = [
    columnInto(bars.time, false),
    columnInto(bars.open, false),
    columnInto(bars.high, giveUp),
    columnInto(bars.low, giveUp),
    columnInto(bars.close, false),
    columnInto(bars.volume, giveUp),
  ];
  const onProgress = options.onProgress;
  const report = (bar: unknown, orders: unknown): void => {
    watchdog.recordProgress(bar);
    onProgress?.(bar, orders);
  };
  // `ignored`: the runner does not wait for this thread, which may be busy with the run's
  // re-derivation or bar check. A synchronous callback stalled the loop on every report.
  const progress = new ivm.Callback(report, { ignored: true });
  await context.evalClosure('__backtestrSetup($0, $1, $2, $3, $4, $5, $6, $7, $8)', [...columns, copyInto({ ...job.params }), copyInto(settings), progress], {
    timeout: watchdog.remainingMs(),
  });

  const strategy = await compileStrategy(isolate, script, job);
  phase.strategyStarted = true;
  await strategy.run(context, { timeout: watchdog.remainingMs(), release: true });

  const running = context.evalClosure('return __backtestrRun()', [], { timeout: watchdog.remainingMs(), result: { copy: true } });
  if (options.whileRunning !== undefined) {
    try {
      options.whileRunning();
    } catch (error) {
      // Disposing ends the loop, and the rejection it causes is expected, so it is not reported.
      running.catch(() => undefined);
      isolate.dispose();
      throw error;
    }
  }
  return await running;
}

function copyInto<T>(value: T): ivm.Copy<T> {
  return new ivm.ExternalCopy(value).copyInto({ release: true });
}

/**
 * Compiles the wrapped strategy. The strategy's own text is compiled alone first: a text that
 * parses as a script on its own has balanced braces, so it cannot close the wrapper's `try`
 * block and throw past the runner (a throw that reaches isolated-vm is converted outside the
 * call's timeout). This also reports syntax errors at the strategy's own positions.
 */
async function compileStrategy(isolate: ivm.Isolate, script: { code: string; wrapped: string }, job: StrategyJob): Promise<ivm.Script> {
  try {
    const alone = await isolate.compileScript(script.code, { filename: job.filename });
    alone.release();
    return await isolate.compileScript(script.wrapped, { filename: job.filename, lineOffset: WRAPPER_LINE_OFFSET });
  } catch (error) {
    throw compileError(error, job.filename);
  }
}
