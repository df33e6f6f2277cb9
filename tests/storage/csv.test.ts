import { parseBarsCsv } from '../../services/storage/bars-csv';
import { readCsvRecords } from '../../services/storage/csv-records';
import { parseIsoDate, formatIsoDate } from '../../services/storage/dates';
import { csvBytes, readSp500Csv } from './helpers';

const HEADER = 'date,open,high,low,close,volume';
const GOOD_ROWS = ['2020-01-02,10,12,9,11,1000', '2020-01-03,11,13,10,12,2000'];

function csv(...lines: string[]): Uint8Array {
  return csvBytes(lines.join('\n') + '\n');
}

function captureSync(fn: () => unknown): any {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error, but the call succeeded');
}

describe('parseIsoDate', () => {
  test.each([
    ['2000-01-03', 10959],
    ['1970-01-01', 0],
    ['2020-02-29', 18321],
  ])('accepts %s', (text, days) => {
    expect(parseIsoDate(text)).toBe(days);
    expect(formatIsoDate(days)).toBe(text);
  });

  test.each(['2021-02-29', '2020-13-01', '2020-00-10', '2020-01-32', '1900-02-29', '2020-1-01', '2020/01/01', ' 2020-01-01', ''])(
    'rejects %p',
    (text) => {
      expect(parseIsoDate(text)).toBeUndefined();
    },
  );
});

describe('parseIsoDate calendar', () => {
  test('matches Date for 1600-2400', () => {
    const mismatches: string[] = [];
    for (let ms = Date.UTC(1600, 0, 1); ms <= Date.UTC(2400, 11, 31); ms += 86_400_000) {
      const text = new Date(ms).toISOString().slice(0, 10);
      if (parseIsoDate(text) !== ms / 86_400_000) mismatches.push(text);
    }
    expect(mismatches).toEqual([]);
  });

  test('year range edges', () => {
    expect(parseIsoDate('0000-01-01')).toBe(Date.UTC(2000, 0, 1) / 86_400_000 - 730_485);
    expect(parseIsoDate('9999-12-31')).toBe(Date.UTC(9999, 11, 31) / 86_400_000);
    expect(formatIsoDate(parseIsoDate('0000-02-29')!)).toBe('0000-02-29');
  });
});

describe('readCsvRecords', () => {
  function records(text: string): [string[], number][] {
    const out: [string[], number][] = [];
    readCsvRecords(text, (fields, line) => out.push([fields, line]));
    return out;
  }

  test('splits LF and CRLF lines', () => {
    expect(records('a,b\r\n1,2\n3,4')).toEqual([
      [['a', 'b'], 1],
      [['1', '2'], 2],
      [['3', '4'], 3],
    ]);
  });

  test('reads quoted fields', () => {
    expect(records('"a,b","say ""hi""",c\r\n"x"\n')).toEqual([
      [['a,b', 'say "hi"', 'c'], 1],
      [['x'], 2],
    ]);
  });

  test('quoted line break counts lines', () => {
    expect(records('"two\nlines",x\nnext,y\n')).toEqual([
      [['two\nlines', 'x'], 1],
      [['next', 'y'], 3],
    ]);
  });

  test('empty fields and trailing comma', () => {
    expect(records(',a,\n')).toEqual([[['', 'a', ''], 1]]);
    expect(records('a,')).toEqual([[['a', ''], 1]]);
  });

  test.each([
    ['"open', 'unterminated_quote', 1],
    ['a,b\n1,"2"x\n', 'text_after_quote', 2],
    ['a,b\n1,2"\n', 'quote_in_field', 2],
  ])('rejects %p', (text, reason, line) => {
    const error = captureSync(() => records(text));
    expect(error.code).toBe('E_CSV_INVALID');
    expect(error.details.reason).toBe(reason);
    expect(error.details.line).toBe(line);
  });
});

describe('parseBarsCsv', () => {
  test('reads S&P 500 file', () => {
    const bars = parseBarsCsv(readSp500Csv());
    expect(bars.count).toBe(5105);
    expect(formatIsoDate(bars.days[0])).toBe('2000-01-03');
    expect(formatIsoDate(bars.days[bars.count - 1])).toBe('2020-04-17');
    expect(bars.open[0]).toBe(1469.25);
    expect(bars.high[0]).toBe(1478);
    expect(bars.low[0]).toBe(1438.359985);
    expect(bars.close[0]).toBe(1455.219971);
    expect(bars.volume[0]).toBe(931800000);
  });

  test('finds columns by header name', () => {
    const bars = parseBarsCsv(csv('Volume,ADJCLOSE,Close, Low ,HIGH,Open,Date,note', '500,1,2,1,3,2,2001-02-03,"any, text"'));
    expect(bars.count).toBe(1);
    expect(formatIsoDate(bars.days[0])).toBe('2001-02-03');
    expect(bars.open[0]).toBe(2);
    expect(bars.high[0]).toBe(3);
    expect(bars.low[0]).toBe(1);
    expect(bars.close[0]).toBe(2);
    expect(bars.volume[0]).toBe(500);
  });

  test('accepts BOM, CRLF and quotes', () => {
    const text = '\ufeff' + HEADER + '\r\n"2020-01-02","10",12,9,11,1000\r\n2020-01-03,11,13,10,12,2000\r\n';
    const bars = parseBarsCsv(csvBytes(text));
    expect(bars.count).toBe(2);
    expect(bars.open[0]).toBe(10);
    expect(bars.volume[1]).toBe(2000);
  });

  test('accepts missing final newline', () => {
    const bars = parseBarsCsv(csvBytes([HEADER, ...GOOD_ROWS].join('\n')));
    expect(bars.count).toBe(2);
  });

  test('accepts exponent notation', () => {
    const bars = parseBarsCsv(csv(HEADER, '2020-01-02,1e1,1.2e1,9,11,1E3'));
    expect(bars.open[0]).toBe(10);
    expect(bars.volume[0]).toBe(1000);
  });

  // Each case: the file, then the line, column and reason the error must name.
  const brokenFiles: [string, Uint8Array, number, string | undefined, string][] = [
    ['empty file', csvBytes(''), 1, undefined, 'empty'],
    ['BOM only', csvBytes('\ufeff'), 1, undefined, 'empty'],
    ['header only', csv(HEADER), 2, undefined, 'no_rows'],
    ['missing volume column', csv('date,open,high,low,close', '2020-01-02,10,12,9,11'), 1, 'volume', 'missing_column'],
    ['duplicate close column', csv('date,open,high,low,close,close,volume', '2020-01-02,10,12,9,11,11,1'), 1, 'close', 'duplicate_column'],
    ['too few fields', csv(HEADER, GOOD_ROWS[0], '2020-01-03,11,13,10,12'), 3, undefined, 'field_count'],
    ['too many fields', csv(HEADER, GOOD_ROWS[0], '2020-01-03,11,13,10,12,5,6'), 3, undefined, 'field_count'],
    ['blank line', csv(HEADER, GOOD_ROWS[0], '', GOOD_ROWS[1]), 3, undefined, 'field_count'],
    ['high below low', csv(HEADER, ...GOOD_ROWS, '2020-01-06,10,8,9,9,1'), 4, 'low', 'low_above_high'],
    ['open above high', csv(HEADER, GOOD_ROWS[0], '2020-01-03,14,13,10,12,1'), 3, 'open', 'outside_low_high'],
    ['open below low', csv(HEADER, GOOD_ROWS[0], '2020-01-03,9,13,10,12,1'), 3, 'open', 'outside_low_high'],
    ['close above high', csv(HEADER, GOOD_ROWS[0], '2020-01-03,11,13,10,14,1'), 3, 'close', 'outside_low_high'],
    ['close below low', csv(HEADER, GOOD_ROWS[0], '2020-01-03,11,13,10,9,1'), 3, 'close', 'outside_low_high'],
    ['negative volume', csv(HEADER, GOOD_ROWS[0], '2020-01-03,11,13,10,12,-1'), 3, 'volume', 'negative'],
    ['NaN open', csv(HEADER, GOOD_ROWS[0], '2020-01-03,NaN,13,10,12,1'), 3, 'open', 'not_a_number'],
    ['Infinity high', csv(HEADER, GOOD_ROWS[0], '2020-01-03,11,Infinity,10,12,1'), 3, 'high', 'not_a_number'],
    ['hex low', csv(HEADER, GOOD_ROWS[0], '2020-01-03,11,13,0xA,12,1'), 3, 'low', 'not_a_number'],
    ['overflowing close', csv(HEADER, GOOD_ROWS[0], '2020-01-03,11,13,10,1e999,1'), 3, 'close', 'not_finite'],
    ['empty volume', csv(HEADER, GOOD_ROWS[0], '2020-01-03,11,13,10,12,'), 3, 'volume', 'missing_value'],
    ['non-date', csv(HEADER, GOOD_ROWS[0], 'yesterday,11,13,10,12,1'), 3, 'date', 'not_a_date'],
    ['impossible date', csv(HEADER, GOOD_ROWS[0], '2020-02-30,11,13,10,12,1'), 3, 'date', 'not_a_date'],
    ['date with time', csv(HEADER, GOOD_ROWS[0], '2020-01-03T00:00:00Z,11,13,10,12,1'), 3, 'date', 'not_a_date'],
    ['decreasing date', csv(HEADER, ...GOOD_ROWS, '2020-01-01,11,13,10,12,1'), 4, 'date', 'date_not_increasing'],
    ['repeated date', csv(HEADER, ...GOOD_ROWS, '2020-01-03,11,13,10,12,1'), 4, 'date', 'date_not_increasing'],
    ['invalid UTF-8', new Uint8Array([...csv(HEADER, GOOD_ROWS[0]), 0x32, 0xff, 0x0a]), 3, undefined, 'encoding'],
  ];

  test.each(brokenFiles)('rejects %s', (_name, bytes, line, column, reason) => {
    const error = captureSync(() => parseBarsCsv(bytes));
    expect(error.code).toBe('E_CSV_INVALID');
    expect(error.details.line).toBe(line);
    expect(error.details.reason).toBe(reason);
    expect(error.details.column).toBe(column);
  });

  test('error truncates echoed value', () => {
    const longValue = 'x'.repeat(5000) + '\u001b[31m';
    const error = captureSync(() => parseBarsCsv(csv(HEADER, `2020-01-02,${longValue},12,9,11,1`)));
    expect(error.code).toBe('E_CSV_INVALID');
    expect(error.details.value.length).toBeLessThanOrEqual(20);
    expect(error.message.length).toBeLessThan(200);
    expect(error.message).not.toContain('\u001b');
  });

  test('error escapes control characters', () => {
    const error = captureSync(() => parseBarsCsv(csv(HEADER, '2020-01-02,1\u001b[2J,12,9,11,1')));
    expect(error.details.value).toBe('1?[2J');
    expect(error.message).not.toContain('\u001b');
  });
});

describe('line ends from spreadsheet exports', () => {
  const rows = ['date,open,high,low,close,volume', '2000-01-03,10,12,9,11,100', '2000-01-04,11,13,10,12,200'];

  test('blank lines after the last record are ignored', () => {
    const bars = parseBarsCsv(new TextEncoder().encode(`${rows.join('\n')}\n\n\r\n\n`));
    expect(bars.close.length).toBe(2);
  });

  test('lone CR line ends are read as line ends', () => {
    const bars = parseBarsCsv(new TextEncoder().encode(rows.join('\r')));
    expect(Array.from(bars.close)).toEqual([11, 12]);
  });

  test('blank line between records names its line', () => {
    const text = [rows[0], rows[1], '', rows[2]].join('\n');
    expect(() => parseBarsCsv(new TextEncoder().encode(text))).toThrow(expect.objectContaining({ code: 'E_CSV_INVALID', details: expect.objectContaining({ line: 3 }) }));
  });
});
