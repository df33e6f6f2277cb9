/**
 * Parses and validates a CSV file of daily OHLCV bars into columns ready for the appender.
 *
 * Columns are found by header name, case-insensitively: date, open, high, low, close and volume
 * are required, and any other column (adjclose, for example) is ignored. One bad row rejects the
 * whole file with E_CSV_INVALID naming the line (1-based, the header is line 1), the column and
 * the problem, so nothing half-imported ever reaches the database.
 */
import { parseIsoDate, formatIsoDate } from './dates';
import { MAX_PAYLOAD_BYTES } from '../../protocol/layout';
import { csvInvalid, excerptValue, readCsvRecords } from './csv-records';

/**
 * Maximum size of a CSV file that importBars accepts, in bytes: the whole file travels in one
 * envelope, so it must fit MAX_PAYLOAD_BYTES.
 */
export const MAX_CSV_BYTES = MAX_PAYLOAD_BYTES;

const REQUIRED_COLUMNS = ['date', 'open', 'high', 'low', 'close', 'volume'] as const;
type RequiredColumn = (typeof REQUIRED_COLUMNS)[number];

/** Bars in date order, one typed array per column. */
export interface BarColumns {
  readonly count: number;
  /** Days since 1970-01-01 (a DuckDB DATE). */
  readonly days: Int32Array;
  readonly open: Float64Array;
  readonly high: Float64Array;
  readonly low: Float64Array;
  readonly close: Float64Array;
  readonly volume: Float64Array;
}

/** Plain decimal notation only: no hex, binary, octal, Infinity, NaN or digit separators. */
const DECIMAL_NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/** Parses `bytes` (UTF-8, optional BOM) and returns the validated bars, or throws E_CSV_INVALID. */
export function parseBarsCsv(bytes: Uint8Array): BarColumns {
  const text = normaliseLineEnds(decodeUtf8(bytes));
  if (text.length === 0) throw csvInvalid(1, 'empty', 'the file is empty');

  const builder = new BarColumnsBuilder();
  let header: HeaderLayout | undefined;
  let previousDay = -Infinity;

  readCsvRecords(text, (fields, line) => {
    if (header === undefined) {
      header = readHeader(fields, line);
      return;
    }
    if (fields.length !== header.fieldCount) {
      throw csvInvalid(line, 'field_count', `the row has ${fields.length} fields but the header has ${header.fieldCount}`);
    }

    const day = readDate(fields[header.index.date], line);
    if (day <= previousDay) {
      throw csvInvalid(line, 'date_not_increasing', `dates must be strictly increasing, but ${formatIsoDate(day)} follows ${formatIsoDate(previousDay)}`, {
        column: 'date',
        value: fields[header.index.date],
      });
    }
    previousDay = day;

    const open = readNumber(fields, header, 'open', line);
    const high = readNumber(fields, header, 'high', line);
    const low = readNumber(fields, header, 'low', line);
    const close = readNumber(fields, header, 'close', line);
    const volume = readNumber(fields, header, 'volume', line);
    checkBarRanges(line, open, high, low, close, volume);

    builder.push(day, open, high, low, close, volume);
  });

  if (header === undefined) throw csvInvalid(1, 'empty', 'the file is empty');
  if (builder.count === 0) throw csvInvalid(2, 'no_rows', 'the file has a header but no rows');
  return builder.finish();
}

/**
 * Accepts two habits of spreadsheet exports: line ends of a lone CR (classic Mac OS), used when
 * the file has no LF at all, and blank lines after the last record, which are dropped. A blank
 * line between records is still an error, because it usually means a damaged file.
 */
function normaliseLineEnds(text: string): string {
  const unified = text.includes('\n') ? text : text.replace(/\r/g, '\n');
  return unified.replace(/(?:\r?\n)+$/, '\n');
}

/**
 * Decodes UTF-8 strictly, dropping a leading BOM as TextDecoder does. Invalid bytes are an error
 * rather than U+FFFD, and the error names the first line that contains them.
 */
function decodeUtf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (error) {
    if (!isInvalidEncoding(error)) throw error;
    throw csvInvalid(findInvalidUtf8Line(bytes), 'encoding', 'the line is not valid UTF-8');
  }
}

/** Runs only on the error path, so decoding line by line is cheap enough. */
function findInvalidUtf8Line(bytes: Uint8Array): number {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let line = 1;
  let start = 0;
  while (start <= bytes.length) {
    let end = bytes.indexOf(0x0a, start);
    if (end === -1) end = bytes.length;
    try {
      decoder.decode(bytes.subarray(start, end));
    } catch (error) {
      if (!isInvalidEncoding(error)) throw error;
      return line;
    }
    line++;
    start = end + 1;
  }
  // Not reached in practice: no byte of a multi-byte UTF-8 sequence is 0x0A, so the invalid
  // bytes always lie within one line. Line 1 is a safe fallback.
  return 1;
}

function isInvalidEncoding(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | null)?.code === 'ERR_ENCODING_INVALID_ENCODED_DATA';
}

interface HeaderLayout {
  readonly fieldCount: number;
  readonly index: Record<RequiredColumn, number>;
}

function readHeader(fields: string[], line: number): HeaderLayout {
  const index: Partial<Record<RequiredColumn, number>> = {};
  fields.forEach((field, position) => {
    const name = field.trim().toLowerCase();
    if (!(REQUIRED_COLUMNS as readonly string[]).includes(name)) return;
    const column = name as RequiredColumn;
    if (index[column] !== undefined) {
      throw csvInvalid(line, 'duplicate_column', `the header names column "${column}" twice`, { column });
    }
    index[column] = position;
  });

  for (const column of REQUIRED_COLUMNS) {
    if (index[column] === undefined) {
      throw csvInvalid(line, 'missing_column', `the header has no "${column}" column (required: ${REQUIRED_COLUMNS.join(', ')})`, {
        column,
      });
    }
  }
  return { fieldCount: fields.length, index: index as Record<RequiredColumn, number> };
}

function readDate(field: string, line: number): number {
  const text = hasOuterWhitespace(field) ? field.trim() : field;
  if (text.length === 0) throw csvInvalid(line, 'missing_value', 'the value is missing', { column: 'date' });
  const day = parseIsoDate(text);
  if (day === undefined) {
    throw csvInvalid(line, 'not_a_date', `"${excerptValue(field)}" is not a calendar date in YYYY-MM-DD form`, {
      column: 'date',
      value: field,
    });
  }
  return day;
}

function readNumber(fields: string[], header: HeaderLayout, column: RequiredColumn, line: number): number {
  const field = fields[header.index[column]];
  const text = hasOuterWhitespace(field) ? field.trim() : field;
  if (text.length === 0) throw csvInvalid(line, 'missing_value', 'the value is missing', { column });
  if (!DECIMAL_NUMBER.test(text)) {
    throw csvInvalid(line, 'not_a_number', `"${excerptValue(field)}" is not a decimal number`, { column, value: field });
  }
  const value = Number(text);
  if (!Number.isFinite(value)) {
    throw csvInvalid(line, 'not_finite', `"${excerptValue(field)}" is too large to be a finite number`, { column, value: field });
  }
  return value;
}

/** Spaces around a value are allowed; checking first avoids a copy per field on the hot path. */
function hasOuterWhitespace(field: string): boolean {
  return field.length > 0 && (field.charCodeAt(0) <= 0x20 || field.charCodeAt(field.length - 1) <= 0x20);
}

/** A bar must satisfy low <= open <= high, low <= close <= high and volume >= 0. */
function checkBarRanges(line: number, open: number, high: number, low: number, close: number, volume: number): void {
  if (low > high) {
    throw csvInvalid(line, 'low_above_high', `low (${low}) is above high (${high})`, { column: 'low' });
  }
  if (open < low || open > high) {
    throw csvInvalid(line, 'outside_low_high', `open (${open}) is outside low..high (${low}..${high})`, { column: 'open' });
  }
  if (close < low || close > high) {
    throw csvInvalid(line, 'outside_low_high', `close (${close}) is outside low..high (${low}..${high})`, { column: 'close' });
  }
  if (volume < 0) {
    throw csvInvalid(line, 'negative', `volume (${volume}) is negative`, { column: 'volume' });
  }
}

/** Growable typed arrays, doubled as needed, because the row count is known only at the end. */
class BarColumnsBuilder {
  count = 0;
  private days = new Int32Array(1024);
  private open = new Float64Array(1024);
  private high = new Float64Array(1024);
  private low = new Float64Array(1024);
  private close = new Float64Array(1024);
  private volume = new Float64Array(1024);

  push(day: number, open: number, high: number, low: number, close: number, volume: number): void {
    if (this.count === this.days.length) this.grow();
    const i = this.count++;
    this.days[i] = day;
    this.open[i] = open;
    this.high[i] = high;
    this.low[i] = low;
    this.close[i] = close;
    this.volume[i] = volume;
  }

  finish(): BarColumns {
    const count = this.count;
    return {
      count,
      days: this.days.slice(0, count),
      open: this.open.slice(0, count),
      high: this.high.slice(0, count),
      low: this.low.slice(0, count),
      close: this.close.slice(0, count),
      volume: this.volume.slice(0, count),
    };
  }

  private grow(): void {
    const capacity = this.days.length * 2;
    const days = new Int32Array(capacity);
    days.set(this.days);
    this.days = days;
    this.open = grown(this.open, capacity);
    this.high = grown(this.high, capacity);
    this.low = grown(this.low, capacity);
    this.close = grown(this.close, capacity);
    this.volume = grown(this.volume, capacity);
  }
}

function grown(from: Float64Array, capacity: number): Float64Array<ArrayBuffer> {
  const to = new Float64Array(capacity);
  to.set(from);
  return to;
}
