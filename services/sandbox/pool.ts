/**
 * The pool of worker threads that run strategy isolates: one isolate at a time per thread, one
 * thread per core by default.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { Piscina } from 'piscina';
import { BacktestrError, isErrorCode } from '../../protocol/errors';
import type { StrategyJob } from './isolate-run';
import { unpackBacktestResult, type PackedBacktestResult } from './packed-result';
import { BAR_COLUMNS, type BacktestResult } from './types';
import type { WorkerReply, WorkerTask } from './worker';

export interface SandboxPoolOptions {
  /** Worker threads; defaults to the number of cores (os.availableParallelism()). */
  threads?: number;
  /** Compiled worker file; defaults to the one resolveWorkerFile() finds. */
  workerFile?: string;
  /**
   * Called after a run failed because its isolate was lost (watchdog.ts). The run has its
   * limit error and the pool keeps serving, but the lost isolate's native thread never ends,
   * so this process can no longer exit normally: only abort or SIGKILL ends it.
   */
  onIsolateLost?: () => void;
}

/**
 * Returns the path of the compiled worker (worker.js). Piscina loads workers as JavaScript, so
 * when this module runs as TypeScript (under ts-jest) the worker comes from the tsc output in
 * build/ at the same relative path.
 */
export function resolveWorkerFile(): string {
  const compiled = __filename.endsWith('.js')
    ? path.join(__dirname, 'worker.js')
    : path.resolve(__dirname, '..', '..', 'build', 'services', 'sandbox', 'worker.js');
  if (!existsSync(compiled)) {
    throw new BacktestrError('E_INTERNAL', `sandbox worker not found at ${compiled}: run "npm run build" (tsc -p tsconfig.json) first`);
  }
  return compiled;
}

export interface SandboxPool {
  readonly threads: number;
  /**
   * Runs the backtest `job` in a worker, accounting and checks included; resolves with its
   * checked result, copied into this realm (unpackBacktestResult), or rejects with its error. With `moveBars` the bar buffers are transferred to
   * the worker instead of copied, and the caller's columns are detached (empty) afterwards.
   */
  runBacktest(job: StrategyJob, options?: { moveBars?: boolean }): Promise<BacktestResult>;
  /** Runs only the strategy of `job` in a worker; resolves with the runner's raw, unchecked result. */
  run(job: StrategyJob): Promise<unknown>;
  /** Ends every worker thread; runs still in progress reject with E_RUN_ABORTED. */
  destroy(): Promise<void>;
}

/** Time destroy() waits for the worker threads to end. */
const DESTROY_TIMEOUT_MS = 5_000;

/** Where the service logs errors the pool does not pass on to the caller. */
export type InternalErrorSink = (message: string) => void;

/** The bar buffers of `job` that can move to a worker: each column that is its buffer's only view. */
function movableBuffers(job: StrategyJob): ArrayBuffer[] {
  const buffers: ArrayBuffer[] = [];
  for (const name of BAR_COLUMNS) {
    const column = job.bars[name];
    const { buffer } = column;
    if (buffer instanceof ArrayBuffer && column.byteOffset === 0 && column.byteLength === buffer.byteLength && !buffers.includes(buffer)) buffers.push(buffer);
  }
  return buffers;
}

export function createSandboxPool(options: SandboxPoolOptions = {}, onInternalError: InternalErrorSink = () => undefined): SandboxPool {
  const threads = options.threads ?? availableParallelism();
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`threads must be an integer >= 1, got ${threads}`);

  const piscina = new Piscina({
    filename: options.workerFile ?? resolveWorkerFile(),
    minThreads: threads,
    maxThreads: threads,
    // Node 24 marks stripTypeScriptTypes as experimental and warns once per thread. These threads
    // run only sandbox code, so silencing experimental warnings here hides nothing else.
    // Worker threads reject process-wide flags such as --no-node-snapshot, which the service
    // process itself needs for isolated-vm, so only thread-safe flags are passed on.
    execArgv: [...process.execArgv.filter((flag) => flag !== '--no-node-snapshot'), '--disable-warning=ExperimentalWarning'],
  });
  let destroyed = false;

  async function runTask(task: WorkerTask, transferList: ArrayBuffer[]): Promise<unknown> {
    if (destroyed) throw new BacktestrError('E_SERVICE_UNAVAILABLE', 'sandbox pool is stopped');
    let reply: WorkerReply;
    try {
      reply = (await piscina.run(task, { transferList })) as WorkerReply;
    } catch (error) {
      if (destroyed) throw new BacktestrError('E_RUN_ABORTED', 'strategy run aborted because the sandbox is stopping', {}, { cause: error });
      onInternalError(`sandbox worker failed: ${error instanceof Error ? error.message : String(error)}`);
      throw new BacktestrError('E_INTERNAL', 'internal error', {}, { cause: error });
    }
    if (reply.internal !== undefined) onInternalError(`sandbox run: ${reply.internal}`);
    if (reply.ok) return reply.result;
    if (reply.isolateLost === true) options.onIsolateLost?.();
    if (!isErrorCode(reply.error.code)) throw new BacktestrError('E_INTERNAL', 'internal error');
    throw BacktestrError.fromWire(reply.error);
  }

  return {
    threads,
    async runBacktest(job: StrategyJob, runOptions: { moveBars?: boolean } = {}): Promise<BacktestResult> {
      // Read before the bar buffers move, which leaves the job's columns empty.
      const barCount = job.bars.time.length;
      const transferList = runOptions.moveBars === true ? movableBuffers(job) : [];
      return unpackBacktestResult((await runTask({ job, finish: true }, transferList)) as PackedBacktestResult, barCount);
    },
    async run(job: StrategyJob): Promise<unknown> {
      return runTask({ job, finish: false }, []);
    },
    async destroy(): Promise<void> {
      destroyed = true;
      // A worker whose isolate was lost may never terminate, and piscina.destroy() waits for
      // every worker. The wait is bounded so that a service stop (and a test) cannot hang on it.
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timed-out'>((resolve) => {
        timer = setTimeout(() => resolve('timed-out'), DESTROY_TIMEOUT_MS);
        timer.unref();
      });
      const outcome = await Promise.race([piscina.destroy().then(() => 'done' as const), timedOut]);
      clearTimeout(timer);
      if (outcome === 'timed-out') onInternalError(`sandbox pool workers did not end within ${DESTROY_TIMEOUT_MS} ms of destroy; a lost isolate may hold one`);
    },
  };
}
