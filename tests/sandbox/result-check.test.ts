/**
 * The host's checks of a run's result: the runner's account must equal the re-derivation from
 * the orders, the raw result must have exactly the expected shape without running any of its
 * code, and a rejected result is reported as a security event.
 */
import { finishBacktest, toStrategyJob } from '../../services/sandbox/backtest';
import { executeStrategy } from '../../services/sandbox/isolate-run';
import { checkBacktestResult } from '../../services/sandbox/result-check';
import { reportSecurityEvent } from '../../services/sandbox/service';
import type { BacktestResult } from '../../services/sandbox/types';
import { createSandboxContext, errorOf, syntheticBars } from './fixtures';

const TRADER = 'function onBar(ctx) { if (ctx.bar.index % 10 === 0) ctx.targetPercent(ctx.bar.index % 20 === 0 ? 1 : 0); }';
const job = toStrategyJob({ source: TRADER, filename: 'trader.js', bars: syntheticBars(100), params: {}, options: { commission: 0.002 } });

describe('sandbox result checks', () => {
  let raw: Record<string, unknown>;

  beforeAll(async () => {
    raw = (await executeStrategy(job)) as Record<string, unknown>;
  });

  const withAccount = (change: Record<string, number>): Record<string, unknown> => ({ ...raw, account: { ...(raw.account as object), ...change } });

  test('honest result passes', () => {
    const result = finishBacktest(job, raw);
    // Targets flip every 10 bars from bar 0 to bar 90; the order on bar 90 fills at bar 91.
    expect(result.fills.length).toBe(10);
    expect((raw.account as { fills: number }).fills).toBe(10);
  });

  test.each([
    ['cash', { cash: 1 }],
    ['position', { position: 3 }],
    ['fills', { fills: 8 }],
  ])('changed %s is a mismatch', (field, change) => {
    const error = errorOf(() => finishBacktest(job, withAccount(change)));
    expect(error.code).toBe('E_RESULT_INVALID');
    expect(error.details).toEqual({ reason: 'account-mismatch', field });
  });

  test('last-bit difference is a mismatch', () => {
    const cash = (raw.account as { cash: number }).cash;
    const nextUp = cash + Number.EPSILON * Math.max(1, Math.abs(cash));
    const error = errorOf(() => finishBacktest(job, withAccount({ cash: nextUp })));
    expect(error.details.reason).toBe('account-mismatch');
  });

  test('extra key is rejected', () => {
    const error = errorOf(() => finishBacktest(job, { ...raw, equity: new Float64Array(100) }));
    expect(error.code).toBe('E_RESULT_INVALID');
    expect(error.details.reason).toBe('schema');
  });

  test('getters in the result never run', () => {
    let reads = 0;
    const forged = { ...raw };
    Object.defineProperty(forged, 'logs', {
      enumerable: true,
      get() {
        reads++;
        return [];
      },
    });
    const error = errorOf(() => finishBacktest(job, forged));
    expect(error.details.reason).toBe('schema');
    expect(reads).toBe(0);
  });

  test('orders with a later bar first are rejected', () => {
    const orders = new Float64Array([5, 0, 1, 4, 0, 1]);
    const error = errorOf(() => finishBacktest(job, { ...raw, orders, account: { cash: 0, position: 0, fills: 0 } }));
    expect(error.details.reason).toBe('schema');
  });

  test('malformed result is rejected', () => {
    const result = finishBacktest(job, raw);
    const cases: [string, BacktestResult][] = [
      ['short equity', { ...result, equity: result.equity.slice(1) }],
      ['NaN equity', { ...result, equity: Float64Array.from(result.equity, (value, i) => (i === 50 ? NaN : value)) }],
      ['infinite metric', { ...result, metrics: { ...result.metrics, sharpe: Infinity } }],
      ['fill count', { ...result, metrics: { ...result.metrics, fills: result.fills.length + 1 } }],
      ['fill at bar 0', { ...result, fills: [{ ...result.fills[0], bar: 0 }, ...result.fills.slice(1)] }],
    ];
    for (const [name, malformed] of cases) {
      const error = errorOf(() => checkBacktestResult(malformed, 100));
      expect([name, error.code, error.details.reason]).toEqual([name, 'E_RESULT_INVALID', 'malformed']);
    }
  });

  test('mismatch sends a security event', () => {
    const { ctx, events } = createSandboxContext();
    const error = errorOf(() => finishBacktest(job, withAccount({ position: 7 })));
    reportSecurityEvent(error, ctx);
    expect(events).toEqual([
      { type: 'sandbox.result_mismatch', severity: 'critical', details: { code: 'E_RESULT_INVALID', reason: 'account-mismatch', field: 'position' } },
    ]);
  });
});
