/**
 * Piscina worker entry: runs one backtest in this thread, from the strategy's isolate to the
 * checked result, and returns plain data. Doing the accounting here rather than on the service's
 * main thread lets a batch use every core for it too.
 *
 * Errors travel back as wire errors because piscina's structured clone drops the `code` and
 * `details` of an Error. A finished result travels packed (packed-result.ts): its fills and equity
 * curve buffers are transferred back, not cloned.
 */
import { Piscina } from 'piscina';
import { BacktestrError, type WireError } from '../../protocol/errors';
import { runWithRederivation } from './backtest';
import { validateStrategyColumns } from './bar-check';
import { executeStrategy, type StrategyJob } from './isolate-run';
import { SpareIsolate } from './prepared-isolate';
import { packBacktestResult, type PackedBacktestResult } from './packed-result';
import type { BacktestResult } from './types';
import type { LostIsolateReason } from './watchdog';

/** One task: a job, and whether to finish it here (checked result) or return the raw result. */
export interface WorkerTask {
  job: StrategyJob;
  finish: boolean;
}

export type WorkerReply =
  | { ok: true; result: PackedBacktestResult | unknown; internal?: string }
  /** `internal` carries an unexpected error's text for the service log, never for the caller. */
  | { ok: false; error: WireError; internal?: string; isolateLost?: boolean };

/** Text of a failed spare isolate preparation or a lost isolate, sent with the next reply for the service log. */
let internalNote: string | undefined;
let lostIsolates = 0;
/** True from a lost isolate until the reply of its run is built. */
let runLostIsolate = false;
const spare = new SpareIsolate((message) => {
  internalNote = message;
});

function takeInternalNote(): { internal?: string } {
  const internal = internalNote;
  internalNote = undefined;
  return internal === undefined ? {} : { internal };
}

/** Passes a lost isolate on to the service log with the reply of the run that lost it. */
function noteLostIsolate(reason: LostIsolateReason): void {
  lostIsolates++;
  runLostIsolate = true;
  internalNote = `strategy isolate lost (${reason}); ${lostIsolates} lost in this thread, each keeps a native thread and its heap until the sandbox process restarts`;
}

function errorReply(error: unknown): WorkerReply {
  const isolateLost = runLostIsolate ? { isolateLost: true } : {};
  runLostIsolate = false;
  if (error instanceof BacktestrError) {
    const cause = error.code === 'E_INTERNAL' ? error.cause : undefined;
    const internal = cause instanceof Error ? `${cause.name}: ${cause.message}` : undefined;
    return { ok: false, error: error.toWire(), ...isolateLost, ...(internal === undefined ? takeInternalNote() : { internal }) };
  }
  const internal = error instanceof Error ? `${error.name}: ${error.message}` : 'non-Error value thrown';
  return { ok: false, error: { code: 'E_INTERNAL', message: 'internal error', details: {} }, internal };
}

/** Packs a finished result into a reply whose fills and equity buffers piscina transfers instead of cloning. */
function movable(result: BacktestResult): unknown {
  const packed = packBacktestResult(result);
  const reply: WorkerReply = { ok: true, result: packed, ...takeInternalNote() };
  return Piscina.move({
    [Piscina.transferableSymbol]: [packed.fills.buffer, packed.equity.buffer],
    [Piscina.valueSymbol]: reply,
  } as unknown as ArrayBuffer);
}

export default async function runStrategyJob(task: WorkerTask): Promise<unknown> {
  const { job } = task;
  try {
    const prepared = spare.take(job.limits.memoryLimitMb);
    if (!task.finish) {
      // The caller checked the bars (toStrategyJob) and receives the raw result unchecked.
      const raw = await executeStrategy(job, { prepared, giveUpUnusedColumns: true, onIsolateLost: noteLostIsolate });
      return { ok: true, result: raw, ...takeInternalNote() };
    }
    // The job's bars are this thread's own copy, so the columns only the isolate reads can move,
    // once checked. Time, open and close are checked while the strategy runs.
    validateStrategyColumns(job.bars);
    return movable(await runWithRederivation(job, 'accounting', { prepared, giveUpUnusedColumns: true, onIsolateLost: noteLostIsolate }));
  } catch (error) {
    return errorReply(error);
  } finally {
    // Prepare the next isolate after piscina has sent this reply, off the run's critical path.
    setImmediate(() => spare.refill(job.limits.memoryLimitMb));
  }
}
