import { createStorageService } from '../../services/storage/service';
import type { ServiceDefinition } from '../../services/runtime/types';
import { callMethod, captureError, createTestContext, csvBytes, readSp500Csv, removeProfile, type TestContext, startUnlocked } from './helpers';

const HEADER = 'date,open,high,low,close,volume';
const MS_PER_DAY = 86_400_000;

/** Expected bars parsed independently of the service, straight from the CSV text. */
function parseExpected(bytes: Uint8Array) {
  const lines = new TextDecoder().decode(bytes).trim().split('\n');
  const names = lines[0].split(',');
  const column = (name: string) => names.indexOf(name);
  const rows = lines.slice(1).map((line) => line.split(','));
  const numbers = (name: string) => rows.map((row) => Number(row[column(name)]));
  return {
    time: rows.map((row) => Date.parse(`${row[column('date')]}T00:00:00Z`)),
    open: numbers('open'),
    high: numbers('high'),
    low: numbers('low'),
    close: numbers('close'),
    volume: numbers('volume'),
  };
}

describe('storage bars', () => {
  let ctx: TestContext;
  let service: ServiceDefinition;

  beforeEach(async () => {
    ctx = createTestContext();
    service = createStorageService({ weakKdfForTests: true });
    await startUnlocked(service, ctx);
  });

  afterEach(async () => {
    await service.stop!(ctx);
    removeProfile(ctx);
  });

  test('imports S&P 500 file', async () => {
    const csv = readSp500Csv();

    const summary = await callMethod(service, ctx, 'importBars', { symbol: '^GSPC', csv });

    expect(summary).toEqual({ symbol: '^GSPC', bars: 5105, first: '2000-01-03', last: '2020-04-17' });
  });

  test('query returns CSV values', async () => {
    const csv = readSp500Csv();
    const expected = parseExpected(csv);
    await callMethod(service, ctx, 'importBars', { symbol: '^GSPC', csv });

    const series = await callMethod(service, ctx, 'queryBars', { symbol: '^GSPC' });

    expect(series.symbol).toBe('^GSPC');
    for (const name of ['time', 'open', 'high', 'low', 'close', 'volume'] as const) {
      expect(series[name]).toBeInstanceOf(Float64Array);
      expect(Array.from(series[name])).toEqual(expected[name]);
    }
    expect(series.time[0]).toBe(Date.UTC(2000, 0, 3));
    expect(series.time[5104]).toBe(Date.UTC(2020, 3, 17));
  });

  test('query date range', async () => {
    await callMethod(service, ctx, 'importBars', { symbol: '^GSPC', csv: readSp500Csv() });

    const march = await callMethod(service, ctx, 'queryBars', { symbol: '^GSPC', from: '2020-03-02', to: '2020-03-06' });
    expect(Array.from(march.time, (ms: number) => new Date(ms).toISOString().slice(0, 10))).toEqual([
      '2020-03-02',
      '2020-03-03',
      '2020-03-04',
      '2020-03-05',
      '2020-03-06',
    ]);
    expect(march.close.length).toBe(5);

    const fromOnly = await callMethod(service, ctx, 'queryBars', { symbol: '^GSPC', from: '2020-04-15' });
    expect(fromOnly.time.length).toBe(3);
    expect(fromOnly.time[0]).toBe(Date.UTC(2020, 3, 15));

    const toOnly = await callMethod(service, ctx, 'queryBars', { symbol: '^GSPC', to: '2000-01-04' });
    expect(toOnly.time.length).toBe(2);
    expect(toOnly.time[1]).toBe(Date.UTC(2000, 0, 4));

    // A weekend has no bars: the range is valid and the arrays are empty.
    const weekend = await callMethod(service, ctx, 'queryBars', { symbol: '^GSPC', from: '2020-04-18', to: '2020-04-19' });
    expect(weekend.time.length).toBe(0);
    expect(weekend.volume.length).toBe(0);
  });

  test('query rejects bad range', async () => {
    await callMethod(service, ctx, 'importBars', { symbol: '^GSPC', csv: readSp500Csv() });

    const reversed = await captureError(() => callMethod(service, ctx, 'queryBars', { symbol: '^GSPC', from: '2020-02-01', to: '2020-01-01' }));
    expect(reversed.code).toBe('E_INVALID_PARAMS');

    const impossible = await captureError(() => callMethod(service, ctx, 'queryBars', { symbol: '^GSPC', from: '2020-02-30' }));
    expect(impossible.code).toBe('E_INVALID_PARAMS');
    expect(impossible.details.path).toBe('params.from');

    const malformed = await captureError(() => callMethod(service, ctx, 'queryBars', { symbol: '^GSPC', to: "2020-01-01' OR 1=1" }));
    expect(malformed.code).toBe('E_INVALID_PARAMS');
  });

  test('unknown symbol not found', async () => {
    const error = await captureError(() => callMethod(service, ctx, 'queryBars', { symbol: 'NOPE' }));
    expect(error.code).toBe('E_NOT_FOUND');
  });

  test('symbol pattern enforced', async () => {
    for (const symbol of ['', 'A'.repeat(33), "A'; DROP TABLE bars; --", 'A/B', 'A B', 'Ä']) {
      const error = await captureError(() => callMethod(service, ctx, 'importBars', { symbol, csv: csvBytes(`${HEADER}\n2020-01-02,1,1,1,1,1\n`) }));
      expect(error.code).toBe('E_INVALID_PARAMS');
    }
    const symbols = await callMethod(service, ctx, 'listSymbols', {});
    expect(symbols).toEqual([]);
  });

  test('lists imported symbols', async () => {
    await callMethod(service, ctx, 'importBars', { symbol: 'SPX', csv: readSp500Csv() });
    await callMethod(service, ctx, 'importBars', { symbol: 'ABC', csv: csvBytes(`${HEADER}\n2021-06-01,1,2,1,2,5\n2021-06-02,2,3,2,3,6\n`) });

    const symbols = await callMethod(service, ctx, 'listSymbols', {});

    expect(symbols).toEqual([
      { symbol: 'ABC', bars: 2, first: '2021-06-01', last: '2021-06-02' },
      { symbol: 'SPX', bars: 5105, first: '2000-01-03', last: '2020-04-17' },
    ]);
  });

  test('reimport replaces bars', async () => {
    await callMethod(service, ctx, 'importBars', { symbol: 'SPX', csv: readSp500Csv() });
    await callMethod(service, ctx, 'importBars', { symbol: 'OTHER', csv: csvBytes(`${HEADER}\n2021-06-01,1,2,1,2,5\n`) });

    // The same dates as the first import, with different values, must not collide.
    const replacement = `${HEADER}\n2000-01-03,5,6,4,5,7\n2000-01-04,5,6,4,6,8\n`;
    const summary = await callMethod(service, ctx, 'importBars', { symbol: 'SPX', csv: csvBytes(replacement) });
    expect(summary).toEqual({ symbol: 'SPX', bars: 2, first: '2000-01-03', last: '2000-01-04' });

    const series = await callMethod(service, ctx, 'queryBars', { symbol: 'SPX' });
    expect(Array.from(series.time)).toEqual([Date.UTC(2000, 0, 3), Date.UTC(2000, 0, 4)]);
    expect(Array.from(series.close)).toEqual([5, 6]);
    expect(Array.from(series.volume)).toEqual([7, 8]);

    const other = await callMethod(service, ctx, 'queryBars', { symbol: 'OTHER' });
    expect(other.time.length).toBe(1);
  });

  // Each case: a CSV body and the line that the error must name.
  const badFiles: [string, string, number, string][] = [
    ['high below low', `${HEADER}\n2020-01-02,10,12,9,11,1\n2020-01-03,10,8,9,9,1\n`, 3, 'low_above_high'],
    ['non-date', `${HEADER}\n2020-01-02,10,12,9,11,1\n2020-01-03,10,12,9,11,1\nJan 6,10,12,9,11,1\n`, 4, 'not_a_date'],
    ['NaN close', `${HEADER}\n2020-01-02,10,12,9,NaN,1\n`, 2, 'not_a_number'],
    ['decreasing date', `${HEADER}\n2020-01-03,10,12,9,11,1\n2020-01-02,10,12,9,11,1\n`, 3, 'date_not_increasing'],
    ['missing column', `date,open,high,low,close\n2020-01-02,10,12,9,11\n`, 1, 'missing_column'],
    ['wrong field count', `${HEADER}\n2020-01-02,10,12,9,11,1\n2020-01-03,10,12,9,11\n`, 3, 'field_count'],
  ];

  test.each(badFiles)('bad file keeps old bars: %s', async (_name, text, line, reason) => {
    const csv = readSp500Csv();
    await callMethod(service, ctx, 'importBars', { symbol: 'SPX', csv });
    const before = await callMethod(service, ctx, 'queryBars', { symbol: 'SPX' });

    const error = await captureError(() => callMethod(service, ctx, 'importBars', { symbol: 'SPX', csv: csvBytes(text) }));
    expect(error.code).toBe('E_CSV_INVALID');
    expect(error.details.line).toBe(line);
    expect(error.details.reason).toBe(reason);
    expect(error.message).toContain(`line ${line}`);

    const after = await callMethod(service, ctx, 'queryBars', { symbol: 'SPX' });
    for (const name of ['time', 'open', 'high', 'low', 'close', 'volume']) {
      expect(after[name]).toEqual(before[name]);
    }
    const symbols = await callMethod(service, ctx, 'listSymbols', {});
    expect(symbols).toEqual([{ symbol: 'SPX', bars: 5105, first: '2000-01-03', last: '2020-04-17' }]);
  });

  test('bad first import stores nothing', async () => {
    const error = await captureError(() =>
      callMethod(service, ctx, 'importBars', { symbol: 'NEW', csv: csvBytes(`${HEADER}\n2020-01-02,10,12,9,11,1\n2020-01-03,1,2,3,4,5\n`) }),
    );
    expect(error.code).toBe('E_CSV_INVALID');

    const missing = await captureError(() => callMethod(service, ctx, 'queryBars', { symbol: 'NEW' }));
    expect(missing.code).toBe('E_NOT_FOUND');
  });

  test('CSV size limit holds', async () => {
    const tooLarge = new Uint8Array(64 * 1024 * 1024 + 1);
    const error = await captureError(() => callMethod(service, ctx, 'importBars', { symbol: 'BIG', csv: tooLarge }));
    expect(error.code).toBe('E_INVALID_PARAMS');

    const summary = await callMethod(service, ctx, 'importBars', { symbol: 'SMALL', csv: csvBytes(`${HEADER}\n2020-01-02,1,1,1,1,0\n`) });
    expect(summary.bars).toBe(1);
  });

  test('concurrent imports stay consistent', async () => {
    const csv = readSp500Csv();
    const symbols = ['A', 'B', 'C', 'D'];

    const summaries = await Promise.all(symbols.map((symbol) => callMethod(service, ctx, 'importBars', { symbol, csv })));
    expect(summaries.map((summary) => summary.bars)).toEqual([5105, 5105, 5105, 5105]);

    const [again, query] = await Promise.all([
      callMethod(service, ctx, 'importBars', { symbol: 'A', csv }),
      callMethod(service, ctx, 'queryBars', { symbol: 'A', from: '2020-01-01' }),
    ]);
    expect(again.bars).toBe(5105);
    expect(query.time[0]).toBe(Date.UTC(2020, 0, 2));
  });

  test('days map to UTC midnight', async () => {
    await callMethod(service, ctx, 'importBars', { symbol: 'LEAP', csv: csvBytes(`${HEADER}\n1999-12-31,1,1,1,1,1\n2000-02-29,1,1,1,1,1\n`) });
    const series = await callMethod(service, ctx, 'queryBars', { symbol: 'LEAP' });
    expect(series.time[0] % MS_PER_DAY).toBe(0);
    expect(series.time[1]).toBe(Date.UTC(2000, 1, 29));
  });
});
