/** Store records: exact round trips, and a clear E_INTEGRITY for every malformed encoding. */
import { decodeStoreRecord, encodeStoreRecord, type ImportBarsRecord, type SaveBacktestRecord } from '../../services/storage/store-records';

const importRecord: ImportBarsRecord = {
  type: 'importBars',
  symbol: 'SPY',
  importedAt: 1_700_000_000_123,
  days: new Int32Array([10_959, 10_960, -3]),
  open: new Float64Array([1.5, -0, Number.MIN_VALUE]),
  high: new Float64Array([2, 3, 4]),
  low: new Float64Array([0.5, 0.25, 0.125]),
  close: new Float64Array([1.75, 2.5, 3.25]),
  volume: new Float64Array([1e9, 0, 7]),
};

const saveRecord: SaveBacktestRecord = {
  type: 'saveBacktest',
  id: 42,
  createdAt: 1_700_000_000_456,
  strategyFile: 'sma.ts',
  strategySha256: 'f'.repeat(64),
  symbol: 'SPY',
  params: { fast: 50 },
  options: {},
  metrics: { sharpe: 0.46 },
  fills: [{ bar: 3, time: 10, side: 'sell', qty: 2, price: 9.5, commission: 0.1 }],
  equity: new Float64Array([100, 101]),
  time: new Float64Array([0, 86_400_000]),
};

function codeAndMessage(bytes: Uint8Array): string {
  try {
    decodeStoreRecord(bytes, 'journal-1.sealed record 1');
    return 'decoded';
  } catch (error) {
    const failure = error as { code?: string; message: string };
    return `${failure.code}: ${failure.message}`;
  }
}

describe('store records', () => {
  test('import record round trips', () => {
    const decoded = decodeStoreRecord(encodeStoreRecord(importRecord), 'here') as ImportBarsRecord;
    expect(decoded.type).toBe('importBars');
    expect(decoded.days).toEqual(importRecord.days);
    expect(Buffer.from(decoded.open.buffer)).toEqual(Buffer.from(importRecord.open.buffer));
    expect(decoded.volume).toEqual(importRecord.volume);
    expect(decoded.importedAt).toBe(importRecord.importedAt);
  });

  test('subarray columns encode only their range', () => {
    const wide = new Float64Array([9, 1, 2, 9]);
    const record = { ...importRecord, days: new Int32Array([1, 2]), open: wide.subarray(1, 3), high: wide.subarray(1, 3), low: wide.subarray(1, 3), close: wide.subarray(1, 3), volume: wide.subarray(1, 3) };
    const decoded = decodeStoreRecord(encodeStoreRecord(record), 'here') as ImportBarsRecord;
    expect(Array.from(decoded.close)).toEqual([1, 2]);
  });

  test('save record round trips', () => {
    const decoded = decodeStoreRecord(encodeStoreRecord(saveRecord), 'here') as SaveBacktestRecord;
    expect(decoded).toEqual(saveRecord);
  });

  test('malformed encodings are rejected', () => {
    const good = Buffer.from(encodeStoreRecord(saveRecord));
    const wrongVersion = Buffer.from(good);
    wrongVersion[0] = 2;
    const headTooLong = Buffer.from(good);
    headTooLong.writeUInt32BE(good.length, 1);

    expect(codeAndMessage(wrongVersion)).toBe('E_INTEGRITY: journal-1.sealed record 1: invalid record: unknown format');
    expect(codeAndMessage(headTooLong)).toBe('E_INTEGRITY: journal-1.sealed record 1: invalid record: header runs past the end');
    expect(codeAndMessage(good.subarray(0, good.length - 1))).toBe('E_INTEGRITY: journal-1.sealed record 1: invalid record: column time runs past the end');
    expect(codeAndMessage(Buffer.concat([good, Buffer.from([0])]))).toBe('E_INTEGRITY: journal-1.sealed record 1: invalid record: 1 bytes after the last column');
    expect(codeAndMessage(good.subarray(0, 3))).toBe('E_INTEGRITY: journal-1.sealed record 1: invalid record: unknown format');
  });

  test('unknown record type is rejected', () => {
    const bytes = encodeStoreRecord({ ...saveRecord, type: 'dropTables' } as unknown as SaveBacktestRecord);
    expect(codeAndMessage(bytes)).toBe('E_INTEGRITY: journal-1.sealed record 1: unknown record type "dropTables"');
  });
});
