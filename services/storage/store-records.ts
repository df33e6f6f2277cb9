/**
 * Store records: every change to the database is one record with all of its inputs resolved
 * (times taken, ids chosen) before it is applied. Applying a record is deterministic, so the
 * sealed store can journal the encoded record and replay it after a crash to the same state.
 *
 * Encoded with the protocol's strict msgpack codec and checked against a schema when decoded,
 * although a record that decodes has already authenticated: the schema catches a build that
 * wrote a record this build does not understand.
 */
import { decodeBody, encodeBody } from '../../protocol/codec';
import { BacktestrError } from '../../protocol/errors';
import { parse, s } from '../../protocol/schema';
import { applySaveBacktest, type NumberRecord } from './backtests';
import { applyImportBars } from './bars';
import type { Session } from './database';
import type { Fill } from '../../protocol/bars';

/** Maximum rows in one record's column, the same cap the CSV import has for a file. */
const MAX_RECORD_ROWS = 50_000_000;
const MAX_RECORD_KEYS = 64;

export interface ImportBarsRecord {
  type: 'importBars';
  symbol: string;
  /** Epoch milliseconds of the import. */
  importedAt: number;
  /** Days since 1970-01-01. */
  days: Int32Array;
  open: Float64Array;
  high: Float64Array;
  low: Float64Array;
  close: Float64Array;
  volume: Float64Array;
}

export interface SaveBacktestRecord {
  type: 'saveBacktest';
  id: number;
  /** Epoch milliseconds of the save. */
  createdAt: number;
  strategyFile: string;
  strategySha256: string;
  symbol: string;
  params: NumberRecord;
  options: NumberRecord;
  metrics: NumberRecord;
  fills: Fill[];
  equity: Float64Array;
  time: Float64Array;
}

export type StoreRecord = ImportBarsRecord | SaveBacktestRecord;

const NUMBER_RECORD = s.record(s.number(), MAX_RECORD_KEYS);
const COLUMN = s.f64array(MAX_RECORD_ROWS);

const SCHEMAS = {
  importBars: s.object({
    type: s.literal('importBars'),
    symbol: s.string(32),
    importedAt: s.number(),
    days: s.bytes(MAX_RECORD_ROWS * 4),
    open: COLUMN,
    high: COLUMN,
    low: COLUMN,
    close: COLUMN,
    volume: COLUMN,
  }),
  saveBacktest: s.object({
    type: s.literal('saveBacktest'),
    id: s.integer(1, Number.MAX_SAFE_INTEGER),
    createdAt: s.number(),
    strategyFile: s.string(255),
    strategySha256: s.string(64),
    symbol: s.string(32),
    params: NUMBER_RECORD,
    options: NUMBER_RECORD,
    metrics: NUMBER_RECORD,
    fills: s.array(
      s.object({ bar: s.number(), time: s.number(), side: s.literal('buy', 'sell'), qty: s.number(), price: s.number(), commission: s.number() }),
      MAX_RECORD_ROWS,
    ),
    equity: COLUMN,
    time: COLUMN,
  }),
};

export function encodeStoreRecord(record: StoreRecord): Uint8Array {
  return encodeBody(record);
}

/** Decodes a journal record; `where` names the journal and record in errors. */
export function decodeStoreRecord(bytes: Uint8Array, where: string): StoreRecord {
  const value = decodeBody(bytes) as { type?: unknown };
  const type = value !== null && typeof value === 'object' ? value.type : undefined;
  if (type !== 'importBars' && type !== 'saveBacktest') {
    throw new BacktestrError('E_INTEGRITY', `${where}: unknown record type ${JSON.stringify(type)}`, { where });
  }
  if (type === 'saveBacktest') return parse<SaveBacktestRecord>(SCHEMAS.saveBacktest, value, where);

  const record = parse<Omit<ImportBarsRecord, 'days'> & { days: Uint8Array }>(SCHEMAS.importBars, value, where);
  if (record.days.length % 4 !== 0) throw new BacktestrError('E_INTEGRITY', `${where}: day column is not a whole number of 32-bit values`, { where });
  // Copied into a fresh buffer, because an Int32Array view needs a 4-byte aligned offset.
  const days = new Int32Array(new Uint8Array(record.days).buffer);
  return { ...record, days };
}

/** Applies `record` inside the caller's transaction and returns the record's result. */
export async function applyStoreRecord(session: Session, record: StoreRecord): Promise<unknown> {
  switch (record.type) {
    case 'importBars':
      return applyImportBars(session, record);
    case 'saveBacktest':
      return applySaveBacktest(session, record);
  }
}
