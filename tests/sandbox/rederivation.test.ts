/**
 * The host's re-derivation from progress reports (rederivation.ts). Reports cut at any bars give
 * the same result, bit for bit, as one pass over the final orders. A report that is invalid or
 * differs from the final orders rejects the run. Also covered: the runner's real reports from an
 * isolate, and bar errors found while the strategy runs in the pool.
 */
import { parse } from '../../protocol/schema';
import { toStrategyJob } from '../../services/sandbox/backtest';
import { executeStrategy, type StrategyJob } from '../../services/sandbox/isolate-run';
import { computeMetrics, CurveStatistics } from '../../services/sandbox/metrics';
import { Rederivation } from '../../services/sandbox/rederivation';
import { createSandboxService, runParamsSchema } from '../../services/sandbox/service';
import { Ledger, simulate } from '../../services/sandbox/simulate';
import type { BacktestResult, StrategyOrder, StrategyOutput } from '../../services/sandbox/types';
import { createSandboxContext, packOrders, syntheticBars, SMA_SOURCE, thrown } from './fixtures';

const BAR_COUNT = 3_000;
const CASH = 50_000;
const COMMISSION = 0.001;

/** A deterministic generator, so that a failure can be replayed. */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function jobFor(orders: readonly StrategyOrder[]): { job: StrategyJob; output: StrategyOutput } {
  const bars = syntheticBars(BAR_COUNT);
  const job = toStrategyJob({ source: 'function onBar() {}', filename: 'orders.js', bars, params: {}, options: { cash: CASH, commission: COMMISSION } });
  const simulation = simulate(bars, orders, { cash: CASH, commission: COMMISSION });
  const account = { cash: simulation.cash, position: simulation.finalPosition, fills: simulation.fills.length };
  return { job, output: { orders: [...orders], logs: [], account } };
}

/** Random orders of both kinds, sorted by bar, several on some bars. */
function randomOrders(random: () => number, count: number): StrategyOrder[] {
  const orders: StrategyOrder[] = [];
  for (let k = 0; k < count; k++) {
    const bar = Math.floor(random() * BAR_COUNT);
    orders.push(random() < 0.5 ? { bar, kind: 'targetPercent', value: Math.round(random() * 4) / 4 } : { bar, kind: 'quantity', value: (random() - 0.4) * 100 });
  }
  return orders.sort((a, b) => a.bar - b.bar);
}

/** Sends the orders as the runner does: a report on bar t carries the orders of the bars before t. */
function sendReports(rederivation: Rederivation, orders: readonly StrategyOrder[], reportBars: readonly number[]): void {
  let sent = 0;
  for (const bar of reportBars) {
    let end = sent;
    while (end < orders.length && orders[end].bar < bar) end++;
    rederivation.receive(bar, packOrders(orders.slice(sent, end)));
    sent = end;
  }
}

function sameBits(a: Float64Array, b: Float64Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

describe('sandbox re-derivation from progress reports', () => {
  test('reports at any bars match one pass', () => {
    const random = lcg(7);
    for (let round = 0; round < 20; round++) {
      const orders = randomOrders(random, 1 + Math.floor(random() * 60));
      const { job, output } = jobFor(orders);
      const whole = new Rederivation(job, { barsChecked: true }).finish(output);

      // Reports on an order's bar and the bar after it are the edge cases: orders of that bar
      // are not known yet, and they fill on the next bar.
      const reportBars = Array.from({ length: 1 + Math.floor(random() * 12) }, () => {
        const order = orders[Math.floor(random() * orders.length)];
        const pick = random();
        if (pick < 0.3) return order.bar;
        if (pick < 0.6) return Math.min(order.bar + 1, BAR_COUNT - 1);
        return Math.floor(random() * BAR_COUNT);
      }).sort((a, b) => a - b);
      // Some rounds check the bars only after a few reports, as a worker does.
      const checkAfter = Math.floor(random() * (reportBars.length + 1));
      const streamed = new Rederivation(job, { barsChecked: false });
      sendReports(streamed, orders, reportBars.slice(0, checkAfter));
      streamed.markBarsChecked();
      sendReports(streamed, orders.filter((order) => order.bar >= (reportBars[checkAfter - 1] ?? 0)), reportBars.slice(checkAfter));
      const result = streamed.finish(output);

      expect(sameBits(result.equity, whole.equity)).toBe(true);
      expect(result.fills).toEqual(whole.fills);
      expect(result.metrics).toEqual(whole.metrics);
    }
  });

  test('one pass matches simulate and computeMetrics', () => {
    const orders = randomOrders(lcg(11), 40);
    const { job, output } = jobFor(orders);
    const result = new Rederivation(job, { barsChecked: true }).finish(output);
    const simulation = simulate(job.bars, orders, { cash: CASH, commission: COMMISSION });
    const metrics = computeMetrics({ time: job.bars.time, equity: simulation.equity, exposedBars: simulation.exposedBars, initialCash: CASH, fillCount: simulation.fills.length });

    expect(sameBits(result.equity, simulation.equity)).toBe(true);
    expect(result.metrics).toEqual(metrics);
  });

  test('changed reported order is rejected', () => {
    const orders: StrategyOrder[] = [{ bar: 10, kind: 'targetPercent', value: 1 }, { bar: 500, kind: 'targetPercent', value: 0 }];
    const { job, output } = jobFor(orders);
    const rederivation = new Rederivation(job, { barsChecked: true });
    sendReports(rederivation, [{ bar: 10, kind: 'targetPercent', value: 0.5 }], [100]);
    const error = thrown(() => rederivation.finish(output));

    expect(error?.code).toBe('E_RESULT_INVALID');
    expect(error?.details.reason).toBe('order-mismatch');
    expect(error?.message).toContain('order 0 differs');
  });

  test('reported order missing later is rejected', () => {
    const orders: StrategyOrder[] = [{ bar: 10, kind: 'targetPercent', value: 1 }];
    const { job, output } = jobFor(orders);
    const rederivation = new Rederivation(job, { barsChecked: true });
    sendReports(rederivation, orders, [100]);
    const error = thrown(() => rederivation.finish({ ...output, orders: [] }));

    expect(error?.code).toBe('E_RESULT_INVALID');
    expect(error?.details.reason).toBe('order-mismatch');
  });

  test('order left out of its report is rejected', () => {
    const orders: StrategyOrder[] = [{ bar: 10, kind: 'targetPercent', value: 1 }, { bar: 50, kind: 'targetPercent', value: 0 }];
    const { job, output } = jobFor(orders);
    const rederivation = new Rederivation(job, { barsChecked: true });
    // The report of bar 100 should carry both orders.
    rederivation.receive(100, packOrders(orders.slice(0, 1)));
    const error = thrown(() => rederivation.finish(output));

    expect(error?.code).toBe('E_RESULT_INVALID');
    expect(error?.details.reason).toBe('order-mismatch');
    expect(error?.message).toContain('missing from the progress report of bar 100');
  });

  test('invalid reports are rejected at finish', () => {
    const orders: StrategyOrder[] = [{ bar: 10, kind: 'targetPercent', value: 1 }];
    const cases: [name: string, send: (rederivation: Rederivation) => void][] = [
      ['orders not a Float64Array', (rederivation) => rederivation.receive(20, [10, 1, 1])],
      ['bar not an integer', (rederivation) => rederivation.receive(20.5, packOrders(orders))],
      ['bar going back', (rederivation) => {
        rederivation.receive(30, packOrders([]));
        rederivation.receive(20, packOrders(orders));
      }],
      ['bar past the last bar', (rederivation) => rederivation.receive(BAR_COUNT, packOrders(orders))],
      ['order after its report', (rederivation) => rederivation.receive(5, packOrders(orders))],
      ['orders not triples', (rederivation) => rederivation.receive(20, new Float64Array(2))],
      ['unknown order kind', (rederivation) => rederivation.receive(20, Float64Array.of(10, 7, 1))],
    ];
    for (const [name, send] of cases) {
      const { job, output } = jobFor(orders);
      const rederivation = new Rederivation(job, { barsChecked: true });
      send(rederivation);
      const error = thrown(() => rederivation.finish(output));
      expect([name, error?.code, error?.details.reason]).toEqual([name, 'E_RESULT_INVALID', 'schema']);
    }
  });

  test('reports after finish are ignored', () => {
    const orders: StrategyOrder[] = [{ bar: 10, kind: 'targetPercent', value: 1 }];
    const { job, output } = jobFor(orders);
    const rederivation = new Rederivation(job, { barsChecked: true });
    const result = rederivation.finish(output);
    rederivation.receive(BAR_COUNT - 1, 'not orders');

    expect(result.fills).toHaveLength(1);
  });

  test('finish before the bar check fails', () => {
    const { job, output } = jobFor([]);
    const error = thrown(() => new Rederivation(job, { barsChecked: false }).finish(output));

    expect(error?.code).toBe('E_INTERNAL');
  });

  test('ledger and statistics reject out-of-order input', () => {
    const bars = syntheticBars(100);
    const ledger = new Ledger(bars, { cash: CASH, commission: 0 });
    ledger.advanceTo(50);

    expect(() => ledger.addOrders([{ bar: 20, kind: 'quantity', value: 1 }])).toThrow(RangeError);
    expect(() => ledger.addOrders([{ bar: NaN, kind: 'quantity', value: 1 }])).toThrow(RangeError);
    const statistics = new CurveStatistics();
    statistics.add(ledger.equity, 0, 10);
    expect(() => statistics.add(ledger.equity, 20, 30)).toThrow(RangeError);
    expect(() => statistics.summarize(ledger.equity)).toThrow(RangeError);
  });
});

describe('sandbox progress reports from the runner', () => {
  test('reports carry every order once, in order', async () => {
    const bars = syntheticBars(20_000);
    const job = toStrategyJob({ source: SMA_SOURCE, filename: 'sma-crossover.ts', bars, params: { fast: 5, slow: 20 } });
    const reportedBars: number[] = [];
    const reportedOrders: number[] = [];
    const raw = (await executeStrategy(job, {
      onProgress: (bar, orders) => {
        reportedBars.push(bar as number);
        reportedOrders.push(...(orders as Float64Array));
      },
    })) as { orders: Float64Array };
    // The last report may arrive after the run's result, so wait for the host's task queue.
    await new Promise((resolve) => setTimeout(resolve, 50));

    expect(raw.orders.length).toBeGreaterThan(30);
    expect(reportedOrders).toEqual(Array.from(raw.orders));
    expect(reportedBars[reportedBars.length - 1]).toBe(bars.time.length - 1);
    expect(reportedBars.every((bar, k) => k === 0 || bar >= reportedBars[k - 1])).toBe(true);
  });
});

describe('sandbox bar errors found during the run', () => {
  const { ctx } = createSandboxContext();
  const service = createSandboxService({ threads: 1 });
  const bars = syntheticBars(5_000);
  const request = { source: SMA_SOURCE, filename: 'sma-crossover.ts', bars, params: { fast: 5, slow: 20 } };
  const run = (overrides: Record<string, unknown>): Promise<BacktestResult> => service.methods.run.handle(parse(runParamsSchema, { ...request, ...overrides }, 'params'), ctx) as Promise<BacktestResult>;

  beforeAll(async () => {
    await service.start!(ctx);
  });

  afterAll(async () => {
    await service.stop!(ctx);
  });

  test('invalid accounting column fails, pool keeps serving', async () => {
    for (const [column, index, value] of [['time', 4_000, NaN], ['open', 2_500, -1], ['close', 4_999, Infinity]] as const) {
      const broken = { ...bars, [column]: bars[column].slice() };
      broken[column][index] = value;
      await expect(run({ bars: broken })).rejects.toMatchObject({ code: 'E_INVALID_PARAMS', details: { path: `params.bars.${column}` } });
    }
    const healthy = await run({});
    expect(healthy.fills.length).toBeGreaterThan(10);
  });

  test('invalid bars come before a compile error', async () => {
    const broken = { ...bars, close: bars.close.slice() };
    broken.close[10] = 0;
    await expect(run({ bars: broken, source: 'function onBar(ctx) {' })).rejects.toMatchObject({ code: 'E_INVALID_PARAMS', details: { path: 'params.bars.close' } });
    await expect(run({ source: 'function onBar(ctx) {' })).rejects.toMatchObject({ code: 'E_STRATEGY_COMPILE' });
  });
});
