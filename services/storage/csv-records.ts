/**
 * A minimal RFC 4180 reader: comma-separated fields, records ended by LF or CRLF, and fields in
 * double quotes that may contain commas, line breaks and doubled quotes ("").
 *
 * It is stricter than RFC 4180 in one way and looser in another. A quote inside an unquoted field
 * and text after a closing quote are errors, because guessing what such a file means could
 * import wrong numbers. A missing newline after the last record is accepted.
 */
import { BacktestrError } from '../../protocol/errors';

/** Reason codes for a rejected CSV file, sent as `details.reason` of E_CSV_INVALID. */
export type CsvProblem =
  | 'empty'
  | 'encoding'
  | 'unterminated_quote'
  | 'quote_in_field'
  | 'text_after_quote'
  | 'missing_column'
  | 'duplicate_column'
  | 'no_rows'
  | 'field_count'
  | 'missing_value'
  | 'not_a_number'
  | 'not_finite'
  | 'not_a_date'
  | 'date_not_increasing'
  | 'low_above_high'
  | 'outside_low_high'
  | 'negative';

/** Maximum length, in characters, of the part of a rejected value that an error repeats. */
export const MAX_VALUE_EXCERPT = 16;

/**
 * Returns a short, printable piece of `value` for an error message: at most MAX_VALUE_EXCERPT
 * characters, with anything outside printable ASCII replaced by '?', so that a crafted file can
 * neither flood a log nor inject control characters into it.
 */
export function excerptValue(value: string): string {
  const piece = value.slice(0, MAX_VALUE_EXCERPT).replace(/[^\x20-\x7e]/g, '?');
  return value.length > MAX_VALUE_EXCERPT ? `${piece}...` : piece;
}

/**
 * Builds the E_CSV_INVALID error. `line` is 1-based and the header is line 1. The message starts
 * with the line and, when one is to blame, the column, so that the user can find the spot.
 */
export function csvInvalid(
  line: number,
  reason: CsvProblem,
  problem: string,
  extra: { column?: string; value?: string } = {},
): BacktestrError {
  const where = extra.column === undefined ? `line ${line}` : `line ${line}, column "${extra.column}"`;
  const details: Record<string, string | number> = { line, reason };
  if (extra.column !== undefined) details.column = extra.column;
  if (extra.value !== undefined) details.value = excerptValue(extra.value);
  return new BacktestrError('E_CSV_INVALID', `invalid CSV at ${where}: ${problem}`, details);
}

const COMMA = 0x2c;
const LINE_FEED = 0x0a;
const CARRIAGE_RETURN = 0x0d;
const QUOTE = 0x22;

/**
 * Calls `onRecord` with the fields of each record and the 1-based line on which the record
 * starts. Throws E_CSV_INVALID for malformed quoting. A record that spans lines (a quoted line
 * break) counts every line it covers, so later line numbers match what an editor shows.
 */
export function readCsvRecords(text: string, onRecord: (fields: string[], line: number) => void): void {
  const length = text.length;
  let position = 0;
  let line = 1;

  while (position < length) {
    // Fast path: a line without quotes is split natively, which covers nearly every line of a
    // market data file and is several times faster than the character loop below.
    let lineEnd = text.indexOf('\n', position);
    if (lineEnd === -1) lineEnd = length;
    const lineText = text.slice(position, text.charCodeAt(lineEnd - 1) === CARRIAGE_RETURN && lineEnd > position ? lineEnd - 1 : lineEnd);
    if (lineText.indexOf('"') === -1) {
      onRecord(lineText.split(','), line);
      position = lineEnd + 1;
      line++;
      continue;
    }

    const recordLine = line;
    const fields: string[] = [];
    let recordDone = false;

    while (!recordDone) {
      let field: string;

      if (text.charCodeAt(position) === QUOTE) {
        // Quoted field: collect the text between quotes, turning each "" into one quote.
        const fieldLine = line;
        let value = '';
        let start = position + 1;
        for (;;) {
          const close = text.indexOf('"', start);
          if (close === -1) {
            throw csvInvalid(fieldLine, 'unterminated_quote', 'a quoted field has no closing quote');
          }
          const segment = text.slice(start, close);
          line += countLineFeeds(segment);
          value += segment;
          if (text.charCodeAt(close + 1) === QUOTE) {
            value += '"';
            start = close + 2;
            continue;
          }
          position = close + 1;
          break;
        }
        // After the closing quote only a separator, a line end or the end of the text may follow.
        if (text.charCodeAt(position) === CARRIAGE_RETURN && text.charCodeAt(position + 1) === LINE_FEED) {
          position++;
        }
        const next = text.charCodeAt(position);
        if (position < length && next !== COMMA && next !== LINE_FEED) {
          throw csvInvalid(line, 'text_after_quote', 'text follows the closing quote of a field');
        }
        field = value;
      } else {
        // Unquoted field: runs to the next comma, line feed or the end of the text.
        let end = position;
        while (end < length) {
          const code = text.charCodeAt(end);
          if (code === COMMA || code === LINE_FEED) break;
          if (code === QUOTE) {
            throw csvInvalid(line, 'quote_in_field', 'a quote appears inside an unquoted field', {
              value: text.slice(position, end + 1),
            });
          }
          end++;
        }
        field = text.slice(position, end);
        // CRLF ends a record as LF does, so drop the CR of the line end.
        if (text.charCodeAt(end - 1) === CARRIAGE_RETURN && end > position && (end === length || text.charCodeAt(end) === LINE_FEED)) {
          field = field.slice(0, -1);
        }
        position = end;
      }

      fields.push(field);
      if (position >= length) {
        recordDone = true;
      } else if (text.charCodeAt(position) === COMMA) {
        position++;
        // A comma as the last character still ends in one more, empty field.
        if (position === length) fields.push('');
        recordDone = position === length;
      } else {
        // Line feed.
        position++;
        line++;
        recordDone = true;
      }
    }

    onRecord(fields, recordLine);
  }
}

function countLineFeeds(text: string): number {
  let count = 0;
  let index = text.indexOf('\n');
  while (index !== -1) {
    count++;
    index = text.indexOf('\n', index + 1);
  }
  return count;
}
