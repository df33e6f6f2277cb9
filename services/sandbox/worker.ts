/**
 * Piscina worker entry: runs one strategy job in this thread's own isolate and returns plain
 * data. Errors travel back as wire errors because piscina's structured clone drops the `code`
 * and `details` of an Error.
 */
import { BacktestrError, type WireError } from '../../protocol/errors';
import { executeStrategy, type StrategyJob } from './isolate-run';

export type WorkerReply =
  | { ok: true; result: unknown }
  /** `internal` carries an unexpected error's text for the service log, never for the caller. */
  | { ok: false; error: WireError; internal?: string };

export default async function runStrategyJob(job: StrategyJob): Promise<WorkerReply> {
  try {
    return { ok: true, result: await executeStrategy(job) };
  } catch (error) {
    if (error instanceof BacktestrError) {
      const cause = error.code === 'E_INTERNAL' ? error.cause : undefined;
      const internal = cause instanceof Error ? `${cause.name}: ${cause.message}` : undefined;
      return { ok: false, error: error.toWire(), ...(internal === undefined ? {} : { internal }) };
    }
    const internal = error instanceof Error ? `${error.name}: ${error.message}` : 'non-Error value thrown';
    return { ok: false, error: { code: 'E_INTERNAL', message: 'internal error', details: {} }, internal };
  }
}
