/**
 * The sandbox service: `sandbox.run` backtests one strategy over the bars it is given. The
 * strategy runs in an isolated-vm isolate on a worker thread of the pool; fills, equity and
 * metrics are computed on that thread, outside the isolate, from the orders the isolate reports,
 * and checked against the isolate's own account before the result comes back here.
 */
import { BacktestrError } from '../../protocol/errors';
import { s } from '../../protocol/schema';
import { SANDBOX_RESTART_EVENT } from '../runtime/exit-codes';
import type { ServiceContext, ServiceDefinition } from '../runtime/types';
import { toStrategyJob } from './backtest';
import { MAX_SOURCE_LENGTH, STRATEGY_FILENAME_PATTERN } from './compile';
import { DEFAULT_LIMITS, LIMIT_BOUNDS, type SandboxLimits } from './limits';
import { createSandboxPool, type SandboxPool, type SandboxPoolOptions } from './pool';
import type { BacktestRequest, BacktestResult } from './types';

/**
 * Maximum bars per run. Six columns of 5,000,000 doubles are 240 MB, which still fits the
 * default 512 MB isolate memory limit with room for the strategy.
 */
export const MAX_BARS = 5_000_000;

export const MAX_PARAMS = 64;
export const PARAM_KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

const bounded = (name: keyof typeof LIMIT_BOUNDS, integer: boolean) => s.number({ ...LIMIT_BOUNDS[name], integer });

export const runParamsSchema = s.object({
  source: s.string(MAX_SOURCE_LENGTH),
  filename: s.string(128, STRATEGY_FILENAME_PATTERN),
  bars: s.object({
    time: s.f64array(MAX_BARS),
    open: s.f64array(MAX_BARS),
    high: s.f64array(MAX_BARS),
    low: s.f64array(MAX_BARS),
    close: s.f64array(MAX_BARS),
    volume: s.f64array(MAX_BARS),
  }),
  params: s.record(s.number(), MAX_PARAMS, PARAM_KEY_PATTERN),
  options: s.object(
    {
      cash: bounded('cash', false),
      commission: bounded('commission', false),
      memoryLimitMb: bounded('memoryLimitMb', true),
      timeoutMs: bounded('timeoutMs', true),
      cpuTimeMs: bounded('cpuTimeMs', true),
      maxOrders: bounded('maxOrders', true),
      maxLogLines: bounded('maxLogLines', true),
    },
    ['cash', 'commission', 'memoryLimitMb', 'timeoutMs', 'cpuTimeMs', 'maxOrders', 'maxLogLines'],
  ),
}, ['options']);

export interface SandboxServiceOptions extends Omit<SandboxPoolOptions, 'onIsolateLost'> {
  /** Limits for every option a request leaves out. */
  defaults?: Readonly<SandboxLimits>;
  /**
   * Ends the process once a lost isolate's process is idle; process.abort() by default, because
   * a process with a lost isolate cannot exit normally. The kernel then restarts the service.
   */
  endProcess?: () => void;
}

/** Delay between the last run of a process with a lost isolate and the end of that process, in ms. */
const REPLY_FLUSH_DELAY_MS = 1000;

const LIMIT_CODES: ReadonlySet<string> = new Set(['E_LIMIT_MEMORY', 'E_LIMIT_TIME', 'E_LIMIT_CPU', 'E_LIMIT_ORDERS', 'E_LIMIT_LOGS']);

/**
 * Sends the security event for a failed run, if it has one: `sandbox.limit_reached` for a limit,
 * `sandbox.result_mismatch` when the isolate's account differs from the host's re-derivation
 * (the accounting inside was changed, or the two copies of the fill rules drifted apart) or its
 * final orders differ from those it reported during the run, and
 * `sandbox.result_invalid` for a result that failed its schema or sanity checks.
 */
export function reportSecurityEvent(error: BacktestrError, ctx: ServiceContext): void {
  if (LIMIT_CODES.has(error.code)) {
    ctx.securityEvent({ type: 'sandbox.limit_reached', severity: 'warning', details: { code: error.code, ...withoutFileNames(error.details) } });
  } else if (error.code === 'E_RESULT_INVALID') {
    const mismatch = error.details.reason === 'account-mismatch' || error.details.reason === 'order-mismatch';
    ctx.securityEvent({
      type: mismatch ? 'sandbox.result_mismatch' : 'sandbox.result_invalid',
      severity: 'critical',
      details: { code: error.code, ...withoutFileNames(error.details) },
    });
  }
}

/**
 * Drops file names from error details for the security log, which is a plain file on disk: a
 * strategy's file name is user data. The caller still receives the whole error.
 */
function withoutFileNames(details: BacktestrError['details']): BacktestrError['details'] {
  const { file: _file, filename: _filename, ...rest } = details as Record<string, unknown>;
  return rest as BacktestrError['details'];
}

/** Builds a sandbox service definition; `sandboxService` is the one with default options. */
export function createSandboxService(options: SandboxServiceOptions = {}): ServiceDefinition {
  const defaults = options.defaults ?? DEFAULT_LIMITS;
  const endProcess = options.endProcess ?? (() => process.abort());
  let pool: SandboxPool | null = null;
  let activeRuns = 0;
  /**
   * Set when a run lost its isolate. isolated-vm asks the embedder to stop serving, finish the
   * work in flight and end the process, so new runs are rejected and the process ends when the
   * last run in flight has finished.
   */
  let restartPending = false;
  let serviceLog: ServiceContext['log'] | null = null;

  let ending = false;

  function endProcessIfIdle(): void {
    if (!restartPending || activeRuns > 0 || ending) return;
    ending = true;
    serviceLog?.error('sandbox process ending so that the kernel restarts it: a strategy isolate was lost and its thread cannot be stopped');
    endProcess();
  }

  /**
   * Runs one backtest. `params` is the runtime's parsed copy of the request, owned by this call,
   * so its bar buffers move to the worker thread without a copy and are detached afterwards.
   */
  async function run(params: BacktestRequest, ctx: ServiceContext): Promise<BacktestResult> {
    if (pool === null) throw new BacktestrError('E_SERVICE_UNAVAILABLE', 'sandbox service is not started');
    if (restartPending) throw new BacktestrError('E_SERVICE_UNAVAILABLE', 'sandbox service is restarting after a strategy isolate was lost: retry the run shortly');
    // The worker checks the bar values, mostly while the strategy runs (backtest.ts).
    const job = toStrategyJob(params, defaults, 'lengths');
    const barCount = job.bars.time.length;
    const startedAt = performance.now();
    activeRuns++;
    try {
      // The worker re-derived and checked the result; the pool copies it into this realm.
      const result = await pool.runBacktest(job, { moveBars: true });
      // No file name in logs or events: it is user data and can reveal the strategy.
      ctx.log.info({ bars: result.bars, fills: result.fills.length, ms: Math.round(performance.now() - startedAt) }, 'strategy run finished');
      return result;
    } catch (error) {
      const code = error instanceof BacktestrError ? error.code : 'E_INTERNAL';
      ctx.log.warn({ bars: barCount, code }, 'strategy run failed');
      if (error instanceof BacktestrError) reportSecurityEvent(error, ctx);
      throw error;
    } finally {
      activeRuns--;
      // NOTE: the runtime gives no signal when a reply has been sent, so the process ends after
      // a delay that leaves time to send the reply of the run that lost the isolate.
      if (restartPending) setTimeout(endProcessIfIdle, REPLY_FLUSH_DELAY_MS);
    }
  }

  return {
    name: 'sandbox',
    methods: {
      run: { params: runParamsSchema, handle: run },
    },
    async start(ctx: ServiceContext): Promise<void> {
      serviceLog = ctx.log;
      const onIsolateLost = (): void => {
        if (!restartPending) {
          // Tells the kernel that the coming exit is a requested restart, not a crash.
          ctx.securityEvent({ type: SANDBOX_RESTART_EVENT, severity: 'warning', details: { runsInFlight: activeRuns } });
        }
        restartPending = true;
      };
      pool = createSandboxPool({ threads: options.threads, workerFile: options.workerFile, onIsolateLost }, (message) => ctx.log.error(message));
      ctx.log.info({ threads: pool.threads }, 'sandbox pool started');
    },
    async stop(ctx: ServiceContext): Promise<void> {
      const stopping = pool;
      pool = null;
      if (stopping !== null) await stopping.destroy();
      ctx.log.info('sandbox pool stopped');
    },
  };
}

export const sandboxService: ServiceDefinition = createSandboxService();

export { runBacktest, validateBars, finishBacktest, toStrategyJob, runWithRederivation } from './backtest';
export { simulate } from './simulate';
export { computeMetrics, dailyReturns, maxDrawdown, meanAndSampleStd } from './metrics';
export { executeStrategy, randomSeedOf } from './isolate-run';
export { checkBacktestResult, crossCheckAccount } from './result-check';
export { DEFAULT_LIMITS, resolveLimits } from './limits';
export type { SandboxLimits } from './limits';
export type * from './types';
