/**
 * The one module that talks to DuckDB. Everything else in the storage service goes through
 * StorageDatabase and its Session, so that encryption at rest can later wrap opening, closing
 * and checkpointing here without touching the queries.
 *
 * DuckDB (through @duckdb/node-api 1.5.x) runs embedded in this process on one connection.
 * Operations run one at a time in arrival order, because a transaction on a shared connection
 * would otherwise see the statements of a concurrent operation.
 */
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  BIGINT,
  DATE,
  DOUBLE,
  DuckDBConnection,
  DuckDBDataChunk,
  DuckDBDateValue,
  DuckDBInstance,
  DuckDBVector,
  INTEGER,
  VARCHAR,
  type DuckDBType,
  type DuckDBValue,
} from '@duckdb/node-api';
import { BacktestrError } from '../../protocol/errors';
import { applyStoreRecord, encodeStoreRecord, type StoreRecord } from './store-records';

export const DATABASE_FILE = 'storage.duckdb';

/**
 * Durable destination of committed records, for a database file that is not durable itself
 * (the sealed store keeps the file in RAM). `append` runs inside the transaction, before COMMIT, and must
 * return only once the record is on disk; `acknowledge` runs after COMMIT.
 */
export interface DurableLog {
  append(record: Uint8Array): Promise<number>;
  acknowledge(sequence: number): Promise<void>;
}

export interface OpenOptions {
  /** Directory for DuckDB's spill files; default: DuckDB's own choice beside the database. */
  tempDirectory?: string;
}

/**
 * Settings applied as instance options when DuckDB opens, so that no statement ever runs before
 * they take effect. DuckDB's "Securing DuckDB" page lists them. With external access off, DuckDB
 * reads and writes only its own database file, write-ahead log and temporary directory: no
 * read_csv, COPY, ATTACH or extension install. lock_configuration then rejects any SET that would
 * undo them.
 */
const LOCKDOWN_OPTIONS: Readonly<Record<string, string>> = {
  enable_external_access: 'false',
  autoinstall_known_extensions: 'false',
  autoload_known_extensions: 'false',
  allow_community_extensions: 'false',
  lock_configuration: 'true',
};

/** Values that may be bound to a statement parameter. */
export type SqlValue = string | number | boolean | null;

/** A result row with every value converted to plain JS. */
export type SqlRow = Record<string, string | number | boolean | null>;

/** One column for Session.append: its DuckDB type and a function giving the value of each row. */
export type AppendColumn =
  | { readonly type: 'varchar'; at(row: number): string }
  /** `date` values are days since 1970-01-01; `bigint` values must be safe integers. */
  | { readonly type: 'double' | 'integer' | 'bigint' | 'date'; at(row: number): number };

const APPEND_TYPES: Record<AppendColumn['type'], DuckDBType> = {
  varchar: VARCHAR,
  double: DOUBLE,
  integer: INTEGER,
  bigint: BIGINT,
  date: DATE,
};

export interface Session {
  /** Runs one statement with `?` parameters and discards its result. */
  execute(sql: string, values?: readonly SqlValue[]): Promise<void>;
  /** Runs one query and returns its rows. Only for small results: each row becomes an object. */
  selectRows(sql: string, values?: readonly SqlValue[]): Promise<SqlRow[]>;
  /**
   * Runs a query whose columns are all non-null DOUBLE and returns one Float64Array per column,
   * read chunk by chunk, which is far faster than building row objects.
   */
  selectDoubleColumns(sql: string, values?: readonly SqlValue[]): Promise<Float64Array[]>;
  /** Appends `rowCount` rows to `table` with DuckDB's appender, one data chunk per vector size (2,048 rows). */
  append(table: string, columns: readonly AppendColumn[], rowCount: number): Promise<void>;
}

/** Marks the internal hook that runs raw SQL; only tests use it, and no service method exposes it. */
export const runSqlForTests = Symbol('storage.runSqlForTests');

export class StorageDatabase {
  private queueTail: Promise<unknown> = Promise.resolve();
  private closed = false;
  private durableLog: DurableLog | null = null;
  /** Why writes stopped: set when the database and its durable log may disagree. */
  private brokenReason: string | null = null;

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly connection: DuckDBConnection,
    private readonly log: Logger,
  ) {}

  /**
   * Opens (or creates) the database file in `dir` with external access, extension loading and
   * configuration changes locked down, and checks that DuckDB applied those settings.
   */
  static async open(dir: string, log: Logger, options: OpenOptions = {}): Promise<StorageDatabase> {
    const path = join(dir, DATABASE_FILE);
    await rejectNonRegularFile(path);

    let instance: DuckDBInstance;
    try {
      // Set before the lockdown options, because lock_configuration rejects every later setting.
      const settings: Record<string, string> = options.tempDirectory === undefined ? {} : { temp_directory: options.tempDirectory };
      Object.assign(settings, LOCKDOWN_OPTIONS);
      instance = await DuckDBInstance.create(path, settings);
    } catch (error) {
      throw storageFailure('open', error, log);
    }

    try {
      const connection = await instance.connect();
      await verifyLockdown(connection);
      return new StorageDatabase(instance, connection, log);
    } catch (error) {
      instance.closeSync();
      throw storageFailure('open', error, log);
    }
  }

  /**
   * Runs `work` after every earlier operation has finished. With `transaction`, the work runs
   * between BEGIN and COMMIT and is rolled back if it throws. A DuckDB error leaves as E_STORAGE
   * with a generic message; a BacktestrError thrown by `work` leaves unchanged.
   */
  run<T>(operation: string, work: (session: Session) => Promise<T>, options: { transaction?: boolean } = {}): Promise<T> {
    return this.enqueue(operation, work, options.transaction === true, false);
  }

  private enqueue<T>(operation: string, work: (session: Session) => Promise<T>, transaction: boolean, durable: boolean): Promise<T> {
    if (this.closed) return Promise.reject(new BacktestrError('E_STORAGE', 'storage is closed'));
    const result = this.queueTail.then(() => this.runNow(operation, work, transaction, durable));
    // The caller receives the result and its error; the queue only needs to know it settled.
    this.queueTail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  /**
   * Applies `source` (a record, or a function that resolves one inside the transaction) in one
   * transaction. With a durable log attached, the encoded record reaches it before COMMIT.
   * Returns what applying the record returns.
   */
  write(operation: string, source: StoreRecord | ((session: Session) => Promise<StoreRecord>)): Promise<unknown> {
    return this.enqueue(
      operation,
      async (session) => {
        if (this.brokenReason !== null) {
          throw new BacktestrError('E_STORAGE', `storage stopped accepting writes: ${this.brokenReason}; lock and unlock the profile to recover`);
        }
        const record = typeof source === 'function' ? await source(session) : source;
        return applyStoreRecord(session, record).then((result) => ({ result, record }));
      },
      true,
      true,
    ).then(({ result }) => result);
  }

  /** Applies a record read back from a durable log, without logging it again. */
  replay(record: StoreRecord): Promise<unknown> {
    return this.run('replay', (session) => applyStoreRecord(session, record), { transaction: true });
  }

  /** Sends every later write's record to `log` before its COMMIT. */
  attachDurableLog(log: DurableLog): void {
    this.durableLog = log;
  }

  /**
   * Runs CHECKPOINT after every queued operation, then `work` while no other operation can run,
   * so the database file does not change under it.
   */
  checkpointAndHold<T>(work: () => Promise<T>): Promise<T> {
    return this.run('checkpoint', async (session) => {
      await session.execute('CHECKPOINT');
      return work();
    });
  }

  /**
   * Rejects new operations, waits for the queued ones, writes the write-ahead log into the
   * database file (CHECKPOINT) and closes DuckDB.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queueTail;
    try {
      await this.connection.run('CHECKPOINT');
    } catch (error) {
      throw storageFailure('close', error, this.log);
    } finally {
      this.connection.closeSync();
      this.instance.closeSync();
    }
  }

  /**
   * Runs raw SQL on a new connection to this database, for tests of the lockdown only. A DuckDB
   * error becomes E_STORAGE whose `details.kind` is DuckDB's error class, so that a test can tell
   * a "Permission Error" from a syntax error.
   */
  async [runSqlForTests](sql: string): Promise<unknown[][]> {
    const connection = await this.instance.connect();
    try {
      const reader = await connection.runAndReadAll(sql);
      return reader.getRowsJS();
    } catch (error) {
      throw new BacktestrError('E_STORAGE', 'test SQL failed', { kind: duckdbErrorKind(error) }, { cause: error });
    } finally {
      connection.closeSync();
    }
  }

  private async runNow<T>(operation: string, work: (session: Session) => Promise<T>, transaction: boolean, durable: boolean): Promise<T> {
    const session = new ConnectionSession(this.connection);
    let committed = false;
    try {
      if (transaction) await this.connection.run('BEGIN TRANSACTION');
      const value = await work(session);
      const sequence = durable ? await this.logRecord(value as { record: StoreRecord }) : null;
      if (transaction) await this.commitLogged(sequence);
      committed = true;
      if (sequence !== null) await this.acknowledge(sequence);
      return value;
    } catch (error) {
      if (transaction && !committed) await this.rollback(operation);
      throw storageFailure(operation, error, this.log);
    } finally {
      session.end();
    }
  }

  private async logRecord(value: { record: StoreRecord }): Promise<number | null> {
    if (this.durableLog === null) return null;
    return this.durableLog.append(encodeStoreRecord(value.record));
  }

  private async commitLogged(sequence: number | null): Promise<void> {
    try {
      await this.connection.run('COMMIT');
    } catch (error) {
      // The record is durable but the database lacks it. Replaying the log on the next unlock
      // makes the two agree again, so until then no write may build on the difference.
      if (sequence !== null) this.brokenReason = `commit ${sequence} failed after it was logged`;
      throw error;
    }
  }

  private async acknowledge(sequence: number): Promise<void> {
    try {
      await this.durableLog!.acknowledge(sequence);
    } catch (error) {
      // The log holds the record but its acknowledgement did not persist, so a second
      // unacknowledged record would look like tampering on the next unlock.
      this.brokenReason = `acknowledging commit ${sequence} failed`;
      throw error;
    }
  }

  private async rollback(operation: string): Promise<void> {
    try {
      await this.connection.run('ROLLBACK');
    } catch (error) {
      // DuckDB has already ended a transaction whose COMMIT failed, so ROLLBACK finds none.
      this.log.warn({ operation, kind: duckdbErrorKind(error) }, 'storage rollback failed');
    }
  }
}

class ConnectionSession implements Session {
  private active = true;

  constructor(private readonly connection: DuckDBConnection) {}

  end(): void {
    this.active = false;
  }

  async execute(sql: string, values: readonly SqlValue[] = []): Promise<void> {
    this.assertActive();
    await this.connection.run(sql, [...values]);
  }

  async selectRows(sql: string, values: readonly SqlValue[] = []): Promise<SqlRow[]> {
    this.assertActive();
    const result = await this.connection.run(sql, [...values]);
    const names = result.columnNames();
    const rows = await result.getRows();
    return rows.map((row) => {
      const out: SqlRow = {};
      row.forEach((value, column) => {
        out[names[column]] = toPlainValue(value);
      });
      return out;
    });
  }

  async selectDoubleColumns(sql: string, values: readonly SqlValue[] = []): Promise<Float64Array[]> {
    this.assertActive();
    const result = await this.connection.run(sql, [...values]);
    const columns = Array.from({ length: result.columnCount }, () => new Float64Array(result.rowCount));

    let offset = 0;
    for (let chunkIndex = 0; chunkIndex < result.chunkCount; chunkIndex++) {
      const chunk = result.getChunk(chunkIndex);
      const rowCount = chunk.rowCount;
      columns.forEach((column, columnIndex) => {
        const vector = chunk.getColumnVector(columnIndex);
        for (let row = 0; row < rowCount; row++) {
          const value = vector.getItem(row);
          if (typeof value !== 'number') {
            throw new BacktestrError('E_STORAGE', 'storage query returned a value that is not a DOUBLE');
          }
          column[offset + row] = value;
        }
      });
      offset += rowCount;
    }
    return columns;
  }

  async append(table: string, columns: readonly AppendColumn[], rowCount: number): Promise<void> {
    this.assertActive();
    const appender = await this.connection.createAppender(table);
    const types = columns.map((column) => APPEND_TYPES[column.type]);
    const chunkSize = DuckDBVector.standardSize();

    try {
      for (let start = 0; start < rowCount; start += chunkSize) {
        const size = Math.min(chunkSize, rowCount - start);
        const chunk = DuckDBDataChunk.create(types, size);
        columns.forEach((column, columnIndex) => fillVector(chunk.getColumnVector(columnIndex), column, start, size));
        appender.appendDataChunk(chunk);
      }
      // Closing flushes, and a constraint violation surfaces here.
      appender.closeSync();
    } catch (error) {
      // Drop the rows still buffered, so that closing does not flush them and fail again.
      appender.clear();
      appender.closeSync();
      throw error;
    }
  }

  private assertActive(): void {
    if (!this.active) throw new BacktestrError('E_INTERNAL', 'storage session used after its operation ended');
  }
}

function fillVector(vector: DuckDBVector, column: AppendColumn, start: number, size: number): void {
  for (let row = 0; row < size; row++) {
    vector.setItem(row, toDuckDBValue(column, start + row));
  }
  vector.flush();
}

function toDuckDBValue(column: AppendColumn, row: number): DuckDBValue {
  switch (column.type) {
    case 'varchar':
      return column.at(row);
    case 'date':
      return new DuckDBDateValue(column.at(row));
    case 'bigint':
      return BigInt(column.at(row));
    case 'double':
    case 'integer':
      return column.at(row);
  }
}

/** Converts a DuckDB value to plain JS; queries cast anything else (DATE, TIMESTAMP) in SQL. */
function toPlainValue(value: DuckDBValue): string | number | boolean | null {
  if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
    return value;
  }
  if (typeof value === 'bigint') {
    const number = Number(value);
    if (!Number.isSafeInteger(number)) throw new BacktestrError('E_STORAGE', 'storage integer is out of the safe range');
    return number;
  }
  throw new BacktestrError('E_STORAGE', 'storage query returned a column type that has no plain JS form');
}

/** Checks that DuckDB reports the lockdown settings as set, in case a version ignored an option. */
async function verifyLockdown(connection: DuckDBConnection): Promise<void> {
  const names = Object.keys(LOCKDOWN_OPTIONS);
  const reader = await connection.runAndReadAll(
    `SELECT name, value FROM duckdb_settings() WHERE name IN (${names.map(() => '?').join(', ')})`,
    names,
  );
  const actual = new Map(reader.getRows().map(([name, value]) => [String(name), String(value)]));
  for (const name of names) {
    if (actual.get(name) !== LOCKDOWN_OPTIONS[name]) {
      throw new BacktestrError('E_STORAGE', 'storage database did not apply its security settings', { setting: name });
    }
  }
}

/** Rejects a database path that is a symbolic link or special file, which could redirect DuckDB's writes. */
async function rejectNonRegularFile(path: string): Promise<void> {
  try {
    const stats = await lstat(path);
    if (!stats.isFile()) throw new BacktestrError('E_STORAGE', 'storage database path is not a regular file');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
}

/**
 * Returns E_STORAGE with a generic message for a DuckDB error and logs only the error's class
 * ("Constraint Error", "IO Error"), because DuckDB messages may quote stored values.
 */
function storageFailure(operation: string, error: unknown, log: Logger): BacktestrError {
  if (error instanceof BacktestrError) return error;
  log.error({ operation, kind: duckdbErrorKind(error) }, 'storage operation failed');
  return new BacktestrError('E_STORAGE', `storage operation ${operation} failed`, { operation }, { cause: error });
}

/** Returns the class prefix of a DuckDB error message, for example "Constraint Error". */
function duckdbErrorKind(error: unknown): string {
  // Duck-typed, because errors from the native binding may come from another realm (under jest)
  // where `instanceof Error` is false.
  const message = (error as { message?: unknown } | null)?.message;
  if (typeof message !== 'string') return 'unknown';
  const match = /^([A-Za-z ]{1,40} Error):/.exec(message);
  return match === null ? 'unknown' : match[1];
}
