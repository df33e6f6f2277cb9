/**
 * MONITOR: the security event log of a profile.
 *
 * Methods (the runtime checks params against each schema first):
 *   record {source, type, severity, details} -> {seq: number | null}   null: coalesced, not written
 *   counts {}                                -> {[type]: number}   events received since this process started
 *   tail {limit}                             -> {events: LoggedEvent[], malformedLines: number}
 *
 * Every detail is redacted before it is written (see redact.ts). Repeats beyond the rate limit
 * are dropped, counted, and reported in one `monitor.events_coalesced` line per type and window.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { s } from '../../protocol/schema';
import type { MethodHandler, ServiceContext, ServiceDefinition, Severity } from '../runtime/types';
import { SecurityLogFile, type LoggedEvent } from './event-log';
import { DEFAULT_RATE_LIMITS, EventRateLimiter, type RateLimits } from './rate-limiter';
import { DETAIL_KEY_PATTERN, MAX_DETAIL_KEYS, redactDetails } from './redact';

export const SECURITY_LOG_FILE = 'security.log';
export const COALESCED_TYPE = 'monitor.events_coalesced';
export const MAX_TAIL_LIMIT = 1000;
/** Distinct types kept in `counts`; further types are counted under COUNTS_OVERFLOW_TYPE. */
export const MAX_COUNTED_TYPES = 1024;
export const COUNTS_OVERFLOW_TYPE = 'monitor.other_types';

/**
 * Sources and types: a letter, then letters, digits, `_`, `.` or `-`, 64 characters at most.
 * Types become keys of the `counts` result, so the names of Object.prototype members are excluded.
 */
const NAME_PATTERN = /^(?!(?:constructor|prototype|toString|valueOf|hasOwnProperty)$)[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

export interface MonitorServiceOptions {
  /** Clock in epoch milliseconds for rate-limit windows. Tests inject one. */
  now?: () => number;
  rateLimits?: Partial<RateLimits>;
}

interface RecordParams {
  source: string;
  type: string;
  severity: Severity;
  details: Record<string, unknown>;
}

const recordSchema = s.object({
  source: s.string(64, NAME_PATTERN),
  type: s.string(64, NAME_PATTERN),
  severity: s.literal('info', 'warning', 'critical'),
  // The schema has no union of scalars, so each value's type is checked in redactDetails.
  details: s.record(s.opaque(), MAX_DETAIL_KEYS, DETAIL_KEY_PATTERN),
});

/** Builds a monitor service with its own counters; each call is an independent instance. */
export function createMonitorService(options: MonitorServiceOptions = {}): ServiceDefinition {
  const now = options.now ?? Date.now;
  const limits: RateLimits = { ...DEFAULT_RATE_LIMITS, ...options.rateLimits };
  const limiter = new EventRateLimiter(limits);
  const counts = new Map<string, number>();
  let logFile: SecurityLogFile | null = null;
  let opening: Promise<SecurityLogFile> | null = null;

  async function openLog(ctx: ServiceContext): Promise<SecurityLogFile> {
    if (logFile !== null) return logFile;
    opening ??= (async () => {
      await fs.mkdir(ctx.stateDir, { recursive: true, mode: 0o700 });
      await fs.chmod(ctx.stateDir, 0o700);
      const opened = await SecurityLogFile.open(path.join(ctx.stateDir, SECURITY_LOG_FILE));
      logFile = opened;
      ctx.log.info({ event: 'log_opened', file: opened.filePath }, 'security log opened');
      return opened;
    })();
    try {
      return await opening;
    } catch (error) {
      // Every call fails while the file cannot be opened, and the next call tries again.
      opening = null;
      ctx.log.error({ event: 'log_open_failed', err: (error as Error).message }, 'security log could not be opened');
      throw error;
    }
  }

  /** Writes the summaries of a window that has ended; called before every write and read. */
  function writeCoalescedSummaries(log: SecurityLogFile, ctx: ServiceContext): void {
    for (const summary of limiter.closeExpiredWindow(now())) {
      log.write('monitor', COALESCED_TYPE, 'warning', { ...summary });
      ctx.log.warn({ event: 'events_coalesced', ...summary }, 'security events dropped by the rate limit');
    }
  }

  function countEvent(type: string): void {
    const key = counts.has(type) || counts.size < MAX_COUNTED_TYPES ? type : COUNTS_OVERFLOW_TYPE;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }

  const record: MethodHandler<RecordParams, { seq: number | null }> = {
    params: recordSchema,
    async handle(params, ctx) {
      const redacted = redactDetails(params.details);
      const log = await openLog(ctx);

      writeCoalescedSummaries(log, ctx);
      countEvent(params.type);
      if (!limiter.admit(params.type)) return { seq: null };

      const seq = log.write(params.source, params.type, params.severity, redacted.details);
      return { seq };
    },
  };

  const countsMethod: MethodHandler<Record<string, never>, Record<string, number>> = {
    params: s.object({}),
    async handle() {
      const types = [...counts.keys()].sort();
      const result: Record<string, number> = {};
      for (const type of types) result[type] = counts.get(type) ?? 0;
      return result;
    },
  };

  const tail: MethodHandler<{ limit: number }, { events: LoggedEvent[]; malformedLines: number }> = {
    params: s.object({ limit: s.integer(1, MAX_TAIL_LIMIT) }),
    async handle(params, ctx) {
      const log = await openLog(ctx);
      writeCoalescedSummaries(log, ctx);
      return log.tail(params.limit);
    },
  };

  return {
    name: 'monitor',
    methods: { record, counts: countsMethod, tail },
    async start(ctx) {
      await openLog(ctx);
    },
    async stop(ctx) {
      if (logFile === null) return;
      // A window still open at stop is cut short, so its drops reach the log before it closes.
      for (const summary of limiter.closeWindow()) {
        logFile.write('monitor', COALESCED_TYPE, 'warning', { ...summary });
      }
      logFile.close();
      logFile = null;
      opening = null;
      ctx.log.info({ event: 'log_closed' }, 'security log closed');
    },
  };
}

export const monitorService: ServiceDefinition = createMonitorService();
