import { createStorageService } from '../../services/storage/service';
import type { ServiceDefinition } from '../../services/runtime/types';
import { callMethod, captureError, createTestContext, removeProfile, type TestContext, startUnlocked } from './helpers';

const SHA256 = 'a'.repeat(64);

function sampleBacktest(points = 1000) {
  const time = new Float64Array(points);
  const equity = new Float64Array(points);
  for (let i = 0; i < points; i++) {
    time[i] = Date.UTC(2000, 0, 3) + i * 86_400_000;
    // Values that do not survive a float32 or decimal round trip.
    equity[i] = 10_000 + Math.sin(i) * 123.456789 + i / 3;
  }
  return {
    strategyFile: 'sma-cross.js',
    strategySha256: SHA256,
    symbol: '^GSPC',
    params: { fast: 10, slow: 50.5 },
    options: { initialCash: 10_000, commissionRate: 0.001 },
    metrics: { totalReturn: 0.1234567890123, maxDrawdown: -0.25, trades: 2 },
    fills: [
      { bar: 12, time: Date.UTC(2000, 0, 19), side: 'buy' as const, qty: 3, price: 1455.219971, commission: 1.5 },
      { bar: 40, time: Date.UTC(2000, 2, 1), side: 'sell' as const, qty: 3, price: 1399.420044, commission: 0 },
    ],
    equity,
    time,
  };
}

describe('storage backtests', () => {
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

  test('save and get round trip', async () => {
    const backtest = sampleBacktest();
    const before = Date.now();

    const { id } = await callMethod(service, ctx, 'saveBacktest', backtest);
    const record = await callMethod(service, ctx, 'getBacktest', { id });

    expect(Number.isSafeInteger(id)).toBe(true);
    expect(record.id).toBe(id);
    expect(record.createdAt).toBeGreaterThanOrEqual(before);
    expect(record.createdAt).toBeLessThanOrEqual(Date.now());
    expect(record.strategyFile).toBe('sma-cross.js');
    expect(record.strategySha256).toBe(SHA256);
    expect(record.symbol).toBe('^GSPC');
    expect(record.params).toEqual(backtest.params);
    expect(record.options).toEqual(backtest.options);
    expect(record.metrics).toEqual(backtest.metrics);
    expect(record.fills).toEqual(backtest.fills);
    expect(record.equity).toBeInstanceOf(Float64Array);
    expect(record.time).toBeInstanceOf(Float64Array);
    expect(Buffer.from(record.equity.buffer, record.equity.byteOffset, record.equity.byteLength)).toEqual(
      Buffer.from(backtest.equity.buffer),
    );
    expect(Buffer.from(record.time.buffer, record.time.byteOffset, record.time.byteLength)).toEqual(Buffer.from(backtest.time.buffer));
  });

  test('accepts bytes for arrays', async () => {
    // msgpackr delivers a Float64Array as bytes; the schema turns them back into numbers.
    const backtest = sampleBacktest(10);
    const { id } = await callMethod(service, ctx, 'saveBacktest', {
      ...backtest,
      equity: new Uint8Array(backtest.equity.buffer),
      time: new Uint8Array(backtest.time.buffer),
    });

    const record = await callMethod(service, ctx, 'getBacktest', { id });
    expect(Array.from(record.equity)).toEqual(Array.from(backtest.equity));
  });

  test('saves empty fills and equity', async () => {
    const { id } = await callMethod(service, ctx, 'saveBacktest', {
      ...sampleBacktest(0),
      fills: [],
      options: undefined,
    });

    const record = await callMethod(service, ctx, 'getBacktest', { id });
    expect(record.fills).toEqual([]);
    expect(record.equity.length).toBe(0);
    expect(record.options).toEqual({});
  });

  test('lists newest first', async () => {
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) {
      const { id } = await callMethod(service, ctx, 'saveBacktest', { ...sampleBacktest(5), strategyFile: `s${i}.js`, params: { run: i } });
      ids.push(id);
    }

    const all = await callMethod(service, ctx, 'listBacktests', {});
    expect(all.map((item: { id: number }) => item.id)).toEqual([...ids].reverse());
    expect(all[0]).toEqual({
      id: ids[2],
      createdAt: expect.any(Number),
      strategyFile: 's2.js',
      strategySha256: SHA256,
      symbol: '^GSPC',
      params: { run: 2 },
      metrics: sampleBacktest().metrics,
    });

    const limited = await callMethod(service, ctx, 'listBacktests', { limit: 2 });
    expect(limited.map((item: { id: number }) => item.id)).toEqual([ids[2], ids[1]]);
  });

  test('unknown id not found', async () => {
    const error = await captureError(() => callMethod(service, ctx, 'getBacktest', { id: 424242 }));
    expect(error.code).toBe('E_NOT_FOUND');
  });

  // Each case: fields that replace those of a valid backtest.
  const invalidInputs: [string, Record<string, unknown>][] = [
    ['length mismatch', { time: new Float64Array(3), equity: new Float64Array(4) }],
    ['NaN equity', { time: new Float64Array(2), equity: Float64Array.of(1, Number.NaN) }],
    ['infinite time', { time: Float64Array.of(Number.POSITIVE_INFINITY), equity: Float64Array.of(1) }],
    ['path in file name', { strategyFile: '../evil.js' }],
    ['dot dot file name', { strategyFile: '..' }],
    ['upper-case sha256', { strategySha256: 'A'.repeat(64) }],
    ['short sha256', { strategySha256: 'a'.repeat(63) }],
    ['bad symbol', { symbol: 'A;B' }],
    ['string param', { params: { fast: '10' } }],
    ['prototype key', { metrics: JSON.parse('{"__proto__": 1}') }],
    ['unknown side', { fills: [{ bar: 1, time: 0, side: 'short', qty: 1, price: 1, commission: 0 }] }],
    ['negative qty', { fills: [{ bar: 1, time: 0, side: 'buy', qty: -1, price: 1, commission: 0 }] }],
    ['fractional bar', { fills: [{ bar: 1.5, time: 0, side: 'buy', qty: 1, price: 1, commission: 0 }] }],
    ['extra field', { sql: 'DROP TABLE backtests' }],
  ];

  test.each(invalidInputs)('rejects %s', async (_name, override) => {
    const error = await captureError(() => callMethod(service, ctx, 'saveBacktest', { ...sampleBacktest(2), ...override }));
    expect(error.code).toBe('E_INVALID_PARAMS');

    const list = await callMethod(service, ctx, 'listBacktests', {});
    expect(list).toEqual([]);
  });

  test('list limit bounds hold', async () => {
    for (const limit of [0, 1001, 1.5]) {
      const error = await captureError(() => callMethod(service, ctx, 'listBacktests', { limit }));
      expect(error.code).toBe('E_INVALID_PARAMS');
    }
    await callMethod(service, ctx, 'saveBacktest', sampleBacktest(1));
    const list = await callMethod(service, ctx, 'listBacktests', { limit: 1000 });
    expect(list.length).toBe(1);
  });
});
