/**
 * A whole backtest: check the bars, run the strategy in an isolate, and compute fills, equity
 * and metrics outside the isolate from its orders, as it reports them, and check them. The
 * service runs it on a worker thread of its pool (worker.ts), and runBacktest in the calling
 * thread.
 */
import { BacktestrError } from '../../protocol/errors';
import { validateAccountingColumns, validateBarLengths, validateBars } from './bar-check';
import { executeStrategy, type ExecuteOptions, type StrategyJob } from './isolate-run';
import { DEFAULT_CASH, DEFAULT_COMMISSION, DEFAULT_LIMITS, resolveLimits, type SandboxLimits } from './limits';
import { Rederivation } from './rederivation';
import { interpretRunnerResult } from './runner-result';
import type { BacktestRequest, BacktestResult } from './types';

export { validateBars } from './bar-check';

/**
 * Builds the isolate job for `request`, with `defaults` for every limit the request leaves out.
 * With `check` 'lengths' only the column lengths are checked here, and the caller must check
 * the values before it uses a result (runWithRederivation does).
 */
export function toStrategyJob(request: BacktestRequest, defaults: Readonly<SandboxLimits> = DEFAULT_LIMITS, check: 'values' | 'lengths' = 'values'): StrategyJob {
  if (check === 'values') validateBars(request.bars);
  else validateBarLengths(request.bars);
  return {
    source: request.source,
    filename: request.filename,
    bars: request.bars,
    params: request.params,
    cash: request.options?.cash ?? DEFAULT_CASH,
    commission: request.options?.commission ?? DEFAULT_COMMISSION,
    limits: resolveLimits(request.options, defaults),
  };
}

/**
 * Checks the runner's raw result for `job`, whose bars were checked, and builds the backtest
 * result from it in one go, without progress reports.
 */
export function finishBacktest(job: StrategyJob, rawResult: unknown): BacktestResult {
  const output = interpretRunnerResult(rawResult, { filename: job.filename, barCount: job.bars.time.length, limits: job.limits });
  return new Rederivation(job, { barsChecked: true }).finish(output);
}

/** The bar columns runWithRederivation checks while the strategy runs. */
export type ColumnsToCheck = 'all' | 'accounting';

/**
 * Runs the strategy of `job` and re-derives its result from the progress reports while the
 * strategy runs (rederivation.ts). The bar values are checked while the strategy's loop runs:
 * every column with `check` 'all', and time, open and close with 'accounting', after the caller
 * has checked high, low and volume (validateStrategyColumns). Invalid bars fail the run with
 * E_INVALID_PARAMS, whatever the strategy did.
 */
export async function runWithRederivation(job: StrategyJob, check: ColumnsToCheck, options: Omit<ExecuteOptions, 'onProgress' | 'whileRunning'> = {}): Promise<BacktestResult> {
  const rederivation = new Rederivation(job, { barsChecked: false });
  let checked = false;
  const validate = (): void => {
    checked = true;
    if (check === 'all') validateBars(job.bars);
    else validateAccountingColumns(job.bars);
  };
  const whileRunning = (): void => {
    validate();
    rederivation.markBarsChecked();
  };
  let rawResult: unknown;
  try {
    rawResult = await executeStrategy(job, { ...options, onProgress: rederivation.receive, whileRunning });
  } catch (error) {
    // The run failed before its loop started (a compile error, say): invalid bars still come first.
    if (!checked && error instanceof BacktestrError) validate();
    throw error;
  }
  const output = interpretRunnerResult(rawResult, { filename: job.filename, barCount: job.bars.time.length, limits: job.limits });
  return rederivation.finish(output);
}

/**
 * Runs a backtest in the calling thread, without the pool: for direct use, tests and benchmarks.
 * `defaults` supplies every limit that `request.options` does not set. The caller's bars are
 * copied into the isolate and stay usable. The host reads them until the run ends, so the caller
 * must not change them before then.
 */
export async function runBacktest(request: BacktestRequest, defaults: Readonly<SandboxLimits> = DEFAULT_LIMITS): Promise<BacktestResult> {
  return runWithRederivation(toStrategyJob(request, defaults, 'lengths'), 'all');
}
