/**
 * The security log file: one JSON line per event, written by pino, read back for `tail`.
 *
 * Line layout (pino adds `level` and `time`, epoch milliseconds):
 *   {"level":"warn","time":1700000000000,"seq":42,"source":"auth","type":"auth.wrong_password",
 *    "severity":"warning","details":{"attemptsLeft":3}}
 *
 * Writes are synchronous so that `tail` reads back every line that `record` returned a seq for,
 * and a crash of this process loses no event that was acknowledged.
 * NOTE: lines are not fsynced, so a power loss can still drop the last events. The log is not
 * rotated and is not chained or signed, so anyone with write access to the file can edit it.
 */
import { chmodSync, closeSync, constants, fstatSync, openSync, promises as fs } from 'node:fs';
import * as readline from 'node:readline';
import pino from 'pino';
import type { Logger } from 'pino';
import { BacktestrError } from '../../protocol/errors';
import type { ErrorDetails } from '../../protocol/errors';
import type { Severity } from '../runtime/types';

export const LOG_FILE_MODE = 0o600;
/** Bytes read per step when scanning the file backwards. */
const TAIL_CHUNK_BYTES = 64 * 1024;
/** Lines inspected at open to find the last seq, before falling back to a full scan. */
const SEQ_RECOVERY_LINES = 64;

export interface LoggedEvent {
  seq: number;
  /** Epoch milliseconds. */
  time: number;
  source: string;
  type: string;
  severity: Severity;
  details: ErrorDetails;
}

const PINO_LEVEL: Record<Severity, 'info' | 'warn' | 'error'> = {
  info: 'info',
  warning: 'warn',
  critical: 'error',
};

export class SecurityLogFile {
  private readonly logger: Logger;
  private readonly destination: ReturnType<typeof pino.destination>;
  private lastSeq: number;

  private constructor(
    readonly filePath: string,
    fd: number,
    lastSeq: number,
  ) {
    this.destination = pino.destination({ fd, sync: true });
    this.logger = pino(
      {
        base: null,
        level: 'info',
        formatters: { level: (label) => ({ level: label }) },
      },
      this.destination,
    );
    this.lastSeq = lastSeq;
  }

  /**
   * Opens (or creates) the log with mode 0600 and continues its seq after the highest one found.
   * O_NOFOLLOW rejects a symbolic link planted at the log path.
   */
  static async open(filePath: string): Promise<SecurityLogFile> {
    const lastSeq = await findLastSeq(filePath);
    const fd = openSync(filePath, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, LOG_FILE_MODE);
    if (!fstatSync(fd).isFile()) {
      closeSync(fd);
      throw new BacktestrError('E_INTERNAL', `security log ${filePath} is not a regular file; move it away and restart`, { file: filePath });
    }
    // openSync's mode only applies to a new file, so an existing one is narrowed here. This is
    // chmod by path because Node's permission model (Node 24) disables fchmod; the O_NOFOLLOW
    // open above has just checked that the path is a regular file.
    if ((fstatSync(fd).mode & 0o777) !== LOG_FILE_MODE) chmodSync(filePath, LOG_FILE_MODE);
    return new SecurityLogFile(filePath, fd, lastSeq);
  }

  /** Appends one event and returns its seq. `details` must already be redacted. */
  write(source: string, type: string, severity: Severity, details: ErrorDetails): number {
    const seq = ++this.lastSeq;
    this.logger[PINO_LEVEL[severity]]({ seq, source, type, severity, details });
    return seq;
  }

  close(): void {
    this.destination.destroy();
  }

  /** Reads the last `limit` well-formed events; `malformedLines` counts lines that did not parse. */
  async tail(limit: number): Promise<{ events: LoggedEvent[]; malformedLines: number }> {
    const lines = await readLastLines(this.filePath, limit);
    const events: LoggedEvent[] = [];
    let malformedLines = 0;
    for (const line of lines) {
      const event = parseLine(line);
      if (event === null) malformedLines++;
      else events.push(event);
    }
    return { events, malformedLines };
  }
}

function isDetailValue(value: unknown): value is string | number | boolean {
  return typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value));
}

/** Parses one log line into an event, or returns null if any field is missing or mistyped. */
export function parseLine(line: string): LoggedEvent | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    // A line cut by a crash or edited by hand: the caller counts it as malformed.
    return null;
  }
  if (value === null || typeof value !== 'object') return null;
  const record = value as Record<string, unknown>;

  const { seq, time, source, type, severity, details } = record;
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(time)) return null;
  if (typeof source !== 'string' || typeof type !== 'string') return null;
  if (severity !== 'info' && severity !== 'warning' && severity !== 'critical') return null;
  if (details === null || typeof details !== 'object' || Array.isArray(details)) return null;

  const copy: ErrorDetails = {};
  for (const [key, detail] of Object.entries(details)) {
    if (!isDetailValue(detail)) return null;
    copy[key] = detail;
  }
  return { seq: seq as number, time: time as number, source, type, severity, details: copy };
}

/**
 * Returns up to `limit` last complete lines, oldest first, reading backwards in chunks so that
 * memory stays proportional to the lines returned, not to the file.
 */
async function readLastLines(filePath: string, limit: number): Promise<string[]> {
  const handle = await fs.open(filePath, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const { size } = await handle.stat();
    let position = size;
    let pending = Buffer.alloc(0);
    const lines: string[] = [];

    while (position > 0 && lines.length < limit) {
      const length = Math.min(TAIL_CHUNK_BYTES, position);
      position -= length;
      const chunk = Buffer.alloc(length);
      await handle.read(chunk, 0, length, position);
      pending = Buffer.concat([chunk, pending]);

      // Everything after the first newline in `pending` is made of whole lines.
      let end = pending.length;
      for (let i = pending.length - 1; i >= 0 && lines.length < limit; i--) {
        if (pending[i] !== 0x0a) continue;
        const line = pending.subarray(i + 1, end).toString('utf8');
        if (line.length > 0) lines.push(line);
        end = i;
      }
      pending = pending.subarray(0, end);
    }

    if (position === 0 && pending.length > 0 && lines.length < limit) lines.push(pending.toString('utf8'));
    return lines.reverse();
  } finally {
    await handle.close();
  }
}

/** Finds the highest seq in the file, or 0 for a new or empty file. */
async function findLastSeq(filePath: string): Promise<number> {
  let lastLines: string[];
  try {
    lastLines = await readLastLines(filePath, SEQ_RECOVERY_LINES);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw error;
  }
  if (lastLines.length === 0) return 0;

  const fromTail = maxSeq(lastLines);
  if (fromTail !== null) return fromTail;

  // The last lines are all damaged: scan the whole file rather than restart at seq 1.
  let highest = 0;
  const input = (await fs.open(filePath, 'r')).createReadStream({ encoding: 'utf8' });
  for await (const line of readline.createInterface({ input, crlfDelay: Infinity })) {
    highest = Math.max(highest, parseLine(line)?.seq ?? 0);
  }
  return highest;
}

function maxSeq(lines: string[]): number | null {
  let highest: number | null = null;
  for (const line of lines) {
    const event = parseLine(line);
    if (event !== null) highest = Math.max(highest ?? 0, event.seq);
  }
  return highest;
}
