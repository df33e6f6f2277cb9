/**
 * Host-side accounting and metrics on a tiny series whose fills and equity are worked out by
 * hand below, plus the rules for capped, skipped and never-filled orders.
 */
import { runBacktest } from '../../services/sandbox/backtest';
import { computeMetrics, dailyReturns } from '../../services/sandbox/metrics';
import { simulate } from '../../services/sandbox/simulate';
import { barsFrom } from './fixtures';

// Bar:        0     1     2     3    4     5
const OPENS = [10, 11, 12, 10, 9, 12];
const CLOSES = [10.5, 11.5, 11, 9.5, 10, 13];

const HAND_STRATEGY = `
function onBar(ctx) {
  const t = ctx.bar.index;
  if (t === 0) ctx.buy(100);
  if (t === 2) ctx.sell(40);
  if (t === 3) ctx.targetPercent(1);
  if (t === 4) ctx.targetPercent(0);
  if (t === 5) {
    ctx.buy(1);
    ctx.log(ctx.cash, ctx.position, ctx.equity);
  }
}
`;

describe('sandbox accounting', () => {
  test('hand-computed fills and equity', async () => {
    const bars = barsFrom(OPENS, CLOSES);
    const result = await runBacktest({ source: HAND_STRATEGY, filename: 'hand.js', bars, params: {}, options: { cash: 10_000, commission: 0.001 } });

    // Bar 1 open 11: buy 100 -> notional 1100, commission 1.1, cash 10000 - 1101.1 = 8898.9.
    // Bar 3 open 10: sell 40 -> notional 400, commission 0.4, cash 8898.9 + 399.6 = 9298.5, 60 held.
    // Bar 4 open 9: target 100% of equity 9298.5 + 60 * 9 = 9838.5 wants 1093.17 units, but cash
    //   pays for only 9298.5 / (9 * 1.001) = 1032.1345... more units, so cash ends at 0.
    // Bar 5 open 12: target 0% sells all 1092.1345... units; the buy on bar 5 never fills.
    const affordable = 9298.5 / (9 * 1.001);
    const held = 60 + affordable;
    expect(result.fills).toHaveLength(4);
    expect(result.fills[0]).toEqual({ bar: 1, time: bars.time[1], side: 'buy', qty: 100, price: 11, commission: expect.closeTo(1.1, 10) });
    expect(result.fills[1]).toEqual({ bar: 3, time: bars.time[3], side: 'sell', qty: 40, price: 10, commission: expect.closeTo(0.4, 10) });
    expect(result.fills[2].side).toBe('buy');
    expect(result.fills[2].bar).toBe(4);
    expect(result.fills[2].price).toBe(9);
    expect(result.fills[2].qty).toBeCloseTo(1032.1345321345, 9);
    expect(result.fills[2].commission).toBeCloseTo(9.2892107892, 9);
    expect(result.fills[3].side).toBe('sell');
    expect(result.fills[3].bar).toBe(5);
    expect(result.fills[3].qty).toBeCloseTo(held, 9);
    expect(result.fills[3].commission).toBeCloseTo(13.1056143856, 9);

    const expectedEquity = [10_000, 10_048.9, 9_998.9, 9_868.5, 10_921.345321345, 13_092.508771229];
    expect(result.equity).toBeInstanceOf(Float64Array);
    expect(result.equity).toHaveLength(6);
    expectedEquity.forEach((value, i) => expect(result.equity[i]).toBeCloseTo(value, 6));

    // The strategy's own view at bar 5 (after the sell at the open) matches the host's books.
    expect(result.logs).toEqual([`[bar 5] ${result.equity[5]} 0 ${result.equity[5]}`]);
  });

  test('hand-computed metrics', async () => {
    const bars = barsFrom(OPENS, CLOSES);
    const result = await runBacktest({ source: HAND_STRATEGY, filename: 'hand.js', bars, params: {}, options: { cash: 10_000, commission: 0.001 } });
    const equity = Array.from(result.equity);
    const final = equity[5];

    const returns = [1, 2, 3, 4, 5].map((i) => equity[i] / equity[i - 1] - 1);
    const mean = returns.reduce((sum, value) => sum + value, 0) / 5;
    const sampleStd = Math.sqrt(returns.reduce((sum, value) => sum + (value - mean) ** 2, 0) / 4);

    expect(result.metrics.final_equity).toBe(final);
    expect(result.metrics.total_return).toBeCloseTo(final / 10_000 - 1, 12);
    // Five calendar days between the first and the last bar.
    expect(result.metrics.cagr).toBeCloseTo((final / 10_000) ** (365.25 / 5) - 1, 0);
    expect(result.metrics.volatility).toBeCloseTo(sampleStd * Math.sqrt(252), 12);
    expect(result.metrics.sharpe).toBeCloseTo((mean / sampleStd) * Math.sqrt(252), 12);
    // The deepest fall is from the bar 1 peak (10048.9) to bar 3 (9868.5).
    expect(result.metrics.max_drawdown).toBeCloseTo(1 - 9_868.5 / 10_048.9, 12);
    expect(result.metrics.fills).toBe(4);
    // Bars 1, 2, 3 and 4 end holding units; bars 0 and 5 end flat.
    expect(result.metrics.exposure).toBeCloseTo(4 / 6, 12);
  });

  test('full-cash target buys cash / open units', () => {
    const bars = barsFrom([50, 40, 45], [50, 42, 44]);
    const simulation = simulate(bars, [{ bar: 0, kind: 'targetPercent', value: 1 }], { cash: 100_000, commission: 0 });
    expect(simulation.fills).toHaveLength(1);
    expect(simulation.fills[0].qty).toBe(100_000 / 40);
    expect(simulation.equity[1]).toBe((100_000 / 40) * 42);
    expect(simulation.equity[2]).toBe((100_000 / 40) * 44);
    expect(simulation.finalPosition).toBe(2_500);
    expect(simulation.exposedBars).toBe(2);
  });

  test('oversized orders are capped, impossible ones skipped', () => {
    const bars = barsFrom([10, 10, 10, 10, 10], [10, 10, 10, 10, 10]);
    const simulation = simulate(
      bars,
      [
        { bar: 0, kind: 'quantity', value: -5 }, // nothing held: no short sale, no fill
        { bar: 1, kind: 'quantity', value: 1_000 }, // cash pays for 100 units only
        { bar: 2, kind: 'quantity', value: -250 }, // sells the 100 held
        { bar: 4, kind: 'quantity', value: 1 }, // placed on the last bar: never fills
      ],
      { cash: 1_000, commission: 0 },
    );
    expect(simulation.fills.map((fill) => [fill.bar, fill.side, fill.qty])).toEqual([
      [2, 'buy', 100],
      [3, 'sell', 100],
    ]);
    expect(Array.from(simulation.equity)).toEqual([1_000, 1_000, 1_000, 1_000, 1_000]);
  });

  test('repeated full target creates no noise fills', async () => {
    const bars = barsFrom([10, 10.1, 10.3, 10.2, 10.7, 11], [10.05, 10.2, 10.25, 10.6, 10.9, 11.1]);
    const result = await runBacktest({ source: 'function onBar(ctx) { ctx.targetPercent(1); }', filename: 'all-in.js', bars, params: {} });
    expect(result.fills).toHaveLength(1);
    expect(result.metrics.exposure).toBeCloseTo(5 / 6, 12);
  });

  test('metrics of a single bar', () => {
    const metrics = computeMetrics({
      time: new Float64Array([0]),
      equity: new Float64Array([100]),
      exposedBars: 0,
      initialCash: 100,
      fillCount: 0,
    });
    expect(metrics).toEqual({ final_equity: 100, total_return: 0, cagr: 0, volatility: 0, sharpe: 0, max_drawdown: 0, fills: 0, exposure: 0 });
    expect(dailyReturns(new Float64Array([100]))).toHaveLength(0);
  });
});
