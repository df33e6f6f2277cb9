/**
 * Attacks on the re-derivation that runs while the strategy runs (rederivation.ts). The cases are
 * crafted progress reports sent straight to Rederivation, hostile strategies that place orders at
 * awkward moments, runs that end at a limit while reports still stream, and invalid bars combined
 * with failing strategies. Every streamed result must equal one pass over the final orders, bit
 * for bit, and every bad report must reject the run with E_RESULT_INVALID.
 */
import { createHash } from 'node:crypto';
import type { BacktestrError } from '../../protocol/errors';
import { parse } from '../../protocol/schema';
import { finishBacktest, toStrategyJob } from '../../services/sandbox/backtest';
import { executeStrategy } from '../../services/sandbox/isolate-run';
import { Rederivation } from '../../services/sandbox/rederivation';
import { createSandboxService, runParamsSchema } from '../../services/sandbox/service';
import { simulate } from '../../services/sandbox/simulate';
import { BAR_COLUMNS, ORDER_KIND_QUANTITY, ORDER_KIND_TARGET_PERCENT, type BacktestOptions, type BacktestResult, type Bars, type StrategyOrder, type StrategyOutput } from '../../services/sandbox/types';
import { createSandboxContext, packOrders, rejection, syntheticBars } from './fixtures';

const FILENAME = 'attack.js';

/** Returns a SHA-256 digest of the equity bits, fills, metrics and logs of `result`. */
function digest(result: BacktestResult): string {
  const hash = createHash('sha256');
  hash.update(Buffer.from(result.equity.buffer, result.equity.byteOffset, result.equity.byteLength));
  hash.update(JSON.stringify([result.fills, result.metrics, result.logs]));
  return hash.digest('hex');
}

function copyBars(bars: Bars): Bars {
  return { time: bars.time.slice(), open: bars.open.slice(), high: bars.high.slice(), low: bars.low.slice(), close: bars.close.slice(), volume: bars.volume.slice() };
}

/** Runs `action` and returns what it threw, or the fill count of the result it returned. */
function outcomeOf(action: () => BacktestResult): string {
  try {
    return `accepted with ${action().fills.length} fills`;
  } catch (error) {
    const { code, details } = error as BacktestrError;
    return `${code} ${String(details?.reason)}`;
  }
}

describe('sandbox re-derivation with crafted reports', () => {
  const bars = syntheticBars(1_000);
  const job = toStrategyJob({ source: 'function onBar() {}', filename: FILENAME, bars, params: {}, options: { maxOrders: 100 } });
  const orders: StrategyOrder[] = [
    { bar: 2, kind: 'quantity', value: 1 },
    { bar: 3, kind: 'quantity', value: 1 },
    { bar: 50, kind: 'targetPercent', value: 0.5 },
  ];
  const simulation = simulate(bars, orders, { cash: job.cash, commission: job.commission });
  const output: StrategyOutput = { orders, logs: [], account: { cash: simulation.cash, position: simulation.finalPosition, fills: simulation.fills.length } };

  function finishAfter(send: (rederivation: Rederivation) => void, barsChecked: boolean): string {
    return outcomeOf(() => {
      const rederivation = new Rederivation(job, { barsChecked });
      send(rederivation);
      if (!barsChecked) rederivation.markBarsChecked();
      return rederivation.finish(output);
    });
  }

  test('order before an earlier report is rejected', () => {
    // The report of bar 10 states that every order before bar 10 is in it, so an order of bar 3
    // that comes with a later report contradicts it. Whether the host had simulated bars 0 to 9
    // by then (bars checked) must not change the outcome.
    const send = (rederivation: Rederivation): void => {
      rederivation.receive(10, packOrders(orders.slice(0, 1)));
      rederivation.receive(60, packOrders(orders.slice(1)));
    };

    expect(finishAfter(send, true)).toBe('E_RESULT_INVALID schema');
    expect(finishAfter(send, false)).toBe('E_RESULT_INVALID schema');
  });

  test('honest reports are accepted', () => {
    const send = (rederivation: Rederivation): void => {
      rederivation.receive(3, packOrders(orders.slice(0, 1)));
      rederivation.receive(3, packOrders([]));
      rederivation.receive(40, packOrders(orders.slice(1, 2)));
      rederivation.receive(999, packOrders(orders.slice(2)));
    };

    expect(finishAfter(send, true)).toBe('accepted with 3 fills');
    expect(finishAfter(send, false)).toBe('accepted with 3 fills');
  });

  test('hostile report values are rejected', () => {
    const ownLength = packOrders(orders.slice(0, 1));
    Object.defineProperty(ownLength, 'length', { value: 6 });
    const manyOrders = new Float64Array(3 * 200_000);
    for (let k = 0; k < 200_000; k++) manyOrders.set([500, ORDER_KIND_QUANTITY, 1], k * 3);

    const cases: [name: string, send: (rederivation: Rederivation) => void, expected: string][] = [
      ['NaN bar', (r) => r.receive(NaN, packOrders([])), 'E_RESULT_INVALID schema'],
      ['negative bar', (r) => r.receive(-1, packOrders([])), 'E_RESULT_INVALID schema'],
      ['bar past the last bar', (r) => r.receive(1e300, packOrders([])), 'E_RESULT_INVALID schema'],
      ['bar as text', (r) => r.receive('10', packOrders([])), 'E_RESULT_INVALID schema'],
      ['bar as bigint', (r) => r.receive(10n, packOrders([])), 'E_RESULT_INVALID schema'],
      ['bar whose valueOf throws', (r) => r.receive({ valueOf: () => { throw new Error('valueOf'); } }, packOrders([])), 'E_RESULT_INVALID schema'],
      ['order bar NaN', (r) => r.receive(10, Float64Array.of(NaN, ORDER_KIND_QUANTITY, 1)), 'E_RESULT_INVALID schema'],
      ['order quantity NaN', (r) => r.receive(10, Float64Array.of(2, ORDER_KIND_QUANTITY, NaN)), 'E_RESULT_INVALID schema'],
      ['order target above 1', (r) => r.receive(10, Float64Array.of(2, ORDER_KIND_TARGET_PERCENT, 1.5)), 'E_RESULT_INVALID schema'],
      ['plain array', (r) => r.receive(10, [2, ORDER_KIND_QUANTITY, 1]), 'E_RESULT_INVALID schema'],
      ['Float32Array', (r) => r.receive(10, Float32Array.of(2, ORDER_KIND_QUANTITY, 1)), 'E_RESULT_INVALID schema'],
      ['proxy of a Float64Array', (r) => r.receive(10, new Proxy(packOrders([]), {})), 'E_RESULT_INVALID schema'],
      ['own length property', (r) => r.receive(10, ownLength), 'E_RESULT_INVALID schema'],
      ['more orders than the run returns', (r) => r.receive(999, manyOrders), 'E_RESULT_INVALID order-mismatch'],
      ['late order on the last bar', (r) => {
        r.receive(999, packOrders(orders));
        r.receive(999, packOrders([{ bar: 999, kind: 'quantity', value: 1 }]));
      }, 'E_RESULT_INVALID order-mismatch'],
    ];
    for (const [name, send, expected] of cases) {
      expect([name, finishAfter(send, true)]).toEqual([name, expected]);
      expect([name, finishAfter(send, false)]).toEqual([name, expected]);
    }
  });
});

describe('sandbox re-derivation under hostile strategies', () => {
  const { ctx } = createSandboxContext();
  const service = createSandboxService({ threads: 2 });
  const bars = syntheticBars(4_000);
  const lastBar = bars.time.length - 1;

  function run(source: string, options: BacktestOptions = {}, runBars: Bars = bars): Promise<BacktestResult> {
    return service.methods.run.handle(parse(runParamsSchema, { source, filename: FILENAME, bars: runBars, params: {}, options }, 'params'), ctx) as Promise<BacktestResult>;
  }

  /** Runs the strategy in this thread and builds its result in one pass over the final orders, without progress reports. */
  async function onePass(source: string, options: BacktestOptions = {}): Promise<BacktestResult> {
    const job = toStrategyJob({ source, filename: FILENAME, bars: copyBars(bars), params: {}, options });
    return finishBacktest(job, await executeStrategy(job));
  }

  beforeAll(async () => {
    await service.start!(ctx);
  });

  afterAll(async () => {
    await service.stop!(ctx);
  });

  test('orders at awkward moments match one pass', async () => {
    const sources = [
      // Orders from microtasks, after onBar returned: the runner rejects them, the strategy hides the error.
      `function onBar(ctx) { if (ctx.bar.index % 7 === 0) ctx.buy(1); Promise.resolve().then(() => { try { ctx.sell(1); } catch (error) {} }); }`,
      // Quantities read from getters and a proxy.
      `const source = new Proxy({}, { get: (target, key) => (key === 'q' ? 0.5 : undefined) });
       const box = { get q() { return 2; } };
       function onBar(ctx) { if (ctx.bar.index % 3 === 0) ctx.buy(box.q); else ctx.sell(source.q); }`,
      // Rejected orders caught, then a valid one, on every bar.
      `function onBar(ctx) { try { ctx.buy(NaN); } catch (error) {} try { ctx.targetPercent(2); } catch (error) {} ctx.order(ctx.bar.index % 2 ? 0.01 : -0.01); }`,
      // A burst on the last bar, which never fills, after orders on every bar.
      `function onBar(ctx) { ctx.targetPercent((ctx.bar.index % 10) / 10); if (ctx.bar.index === ${lastBar}) for (let i = 0; i < 5000; i++) ctx.order(1); }`,
      // Orders storm near the order limit without reaching it.
      `function onBar(ctx) { const count = ctx.bar.index === 1 ? 9990 : 0; for (let i = 0; i < count; i++) ctx.order(i % 2 ? 1 : -1.5); if (ctx.bar.index === ${lastBar}) for (let i = 0; i < 5; i++) ctx.targetPercent(0.5); }`,
      // Uneven time per bar, so reports come at uneven bars.
      `function onBar(ctx) { let x = 0; for (let i = 0; i < (ctx.bar.index % 50) * 300; i++) x += Math.sqrt(i); if (ctx.bar.index % 13 === 0) ctx.targetPercent((x % 10) / 10); }`,
    ];
    for (const source of sources) {
      const options = { maxOrders: 10_000 };
      const [streamed, reference] = await Promise.all([run(source, options), onePass(source, options)]);
      expect([source, digest(streamed)]).toEqual([source, digest(reference)]);
    }
  });

  test('limit run leaves the next run unchanged', async () => {
    const shortSource = 'function onBar(ctx) { if (ctx.bar.index % 10 === 0) ctx.targetPercent(Math.random()); }';
    const alone = digest(await run(shortSource));
    const limitRuns: [source: string, options: BacktestOptions, code: string][] = [
      ['function onBar(ctx) { ctx.order(1); if (ctx.bar.index === 500) for (;;) {} }', { timeoutMs: 300, maxOrders: 10_000 }, 'E_LIMIT_TIME'],
      ['function onBar(ctx) { ctx.order(ctx.bar.index % 2 ? 1 : -1); for (;;) {} }', { cpuTimeMs: 100, maxOrders: 10_000 }, 'E_LIMIT_CPU'],
      ['const kept = []; function onBar(ctx) { ctx.order(1); kept.push(new Array(10000).fill(ctx.bar.index)); }', { memoryLimitMb: 16, maxOrders: 10_000 }, 'E_LIMIT_MEMORY'],
      ['function onBar(ctx) { for (let i = 0; i < 10; i++) try { ctx.order(1); } catch (error) {} }', { maxOrders: 1_000 }, 'E_LIMIT_ORDERS'],
      ['function onBar(ctx) { ctx.order(1); ctx.log(ctx.bar.index); }', { maxLogLines: 100 }, 'E_LIMIT_LOGS'],
    ];
    for (const [source, options, code] of limitRuns) {
      // Both threads: the short runs start while the limit run still reports.
      const [limited, next, other] = await Promise.allSettled([run(source, options), run(shortSource), run(shortSource)]);
      expect([source, limited.status === 'rejected' ? (limited.reason as BacktestrError).code : 'resolved']).toEqual([source, code]);
      expect(next.status === 'fulfilled' ? digest(next.value) : 'rejected').toBe(alone);
      expect(other.status === 'fulfilled' ? digest(other.value) : 'rejected').toBe(alone);
    }
  });

  test('invalid bars win over failing strategies', async () => {
    const failing: [source: string, options: BacktestOptions][] = [
      ['function onBar(ctx) {', {}],
      ['throw new Error("top level");', {}],
      ['function onBar(ctx) { throw new Error("bar 0"); }', {}],
      ['function onBar(ctx) { for (;;) {} }', { timeoutMs: 200 }],
      ['for (;;) {} function onBar() {}', { cpuTimeMs: 100 }],
      ['const kept = []; for (;;) kept.push(new Array(100000).fill(1)); function onBar() {}', { memoryLimitMb: 16 }],
      ['function onBar(ctx) { for (;;) ctx.order(1); }', { maxOrders: 10 }],
    ];
    for (const column of BAR_COLUMNS) {
      for (const index of [0, lastBar]) {
        const broken = copyBars(bars);
        broken[column][index] = column === 'volume' ? -1 : NaN;
        // A later column that is invalid at an earlier bar must not be named first.
        if (column !== 'volume') broken.volume[0] = -1;
        for (const [source, options] of failing) {
          const error = await rejection(run(source, options, broken));
          expect([column, index, source, error.code, error.details.path]).toEqual([column, index, source, 'E_INVALID_PARAMS', `params.bars.${column}`]);
        }
      }
    }
    const healthy = await run('function onBar(ctx) { if (ctx.bar.index === 0) ctx.buy(1); }');
    expect(healthy.fills).toHaveLength(1);
  });
});
