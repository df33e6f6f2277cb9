/**
 * Piscina worker entry: runs one backtest in this thread, from the strategy's isolate to the
 * checked result, and returns plain data. Doing the accounting here rather than on the service's
 * main thread lets a batch use every core for it too.
 *
 * Errors travel back as wire errors because piscina's structured clone drops the `code` and
 * `details` of an Error. The equity curve's buffer is transferred back, not copied.
 */
import { Piscina } from 'piscina';
import { BacktestrError, type WireError } from '../../protocol/errors';
import { finishBacktest } from './backtest';
import { executeStrategy, type StrategyJob } from './isolate-run';
import { SpareIsolate } from './prepared-isolate';
import type { BacktestResult } from './types';

/** One task: a job, and whether to finish it here (checked result) or return the raw result. */
export interface WorkerTask {
  job: StrategyJob;
  finish: boolean;
}

export type WorkerReply =
  | { ok: true; result: BacktestResult | unknown; internal?: string }
  /** `internal` carries an unexpected error's text for the service log, never for the caller. */
  | { ok: false; error: WireError; internal?: string };

/** Text of an error in the preparation of a spare isolate, passed on with the next reply. */
let spareFailure: string | undefined;
const spare = new SpareIsolate((message) => {
  spareFailure = message;
});

function takeSpareFailure(): { internal?: string } {
  const internal = spareFailure;
  spareFailure = undefined;
  return internal === undefined ? {} : { internal };
}

function errorReply(error: unknown): WorkerReply {
  if (error instanceof BacktestrError) {
    const cause = error.code === 'E_INTERNAL' ? error.cause : undefined;
    const internal = cause instanceof Error ? `${cause.name}: ${cause.message}` : undefined;
    return { ok: false, error: error.toWire(), ...(internal === undefined ? takeSpareFailure() : { internal }) };
  }
  const internal = error instanceof Error ? `${error.name}: ${error.message}` : 'non-Error value thrown';
  return { ok: false, error: { code: 'E_INTERNAL', message: 'internal error', details: {} }, internal };
}

/** Wraps a finished reply so that piscina transfers the equity buffer instead of copying it. */
function movable(result: BacktestResult): unknown {
  const reply: WorkerReply = { ok: true, result, ...takeSpareFailure() };
  return Piscina.move({
    [Piscina.transferableSymbol]: [result.equity.buffer],
    [Piscina.valueSymbol]: reply,
  } as unknown as ArrayBuffer);
}

export default async function runStrategyJob(task: WorkerTask): Promise<unknown> {
  const { job } = task;
  try {
    const prepared = await spare.take(job.limits.memoryLimitMb);
    // The job's bars are this thread's own copy, so the columns only the isolate reads can move.
    const raw = await executeStrategy(job, { prepared, giveUpUnusedColumns: true });
    if (!task.finish) return { ok: true, result: raw, ...takeSpareFailure() };
    return movable(finishBacktest(job, raw));
  } catch (error) {
    return errorReply(error);
  } finally {
    // Prepare the next isolate after piscina has sent this reply, off the run's critical path.
    setImmediate(() => spare.refill(job.limits.memoryLimitMb));
  }
}
