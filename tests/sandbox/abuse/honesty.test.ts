/**
 * Attempts to lie about results: reading later bars, changing what the runner or the host uses
 * to compute fills and metrics, hostile order values, and reading the real clock. Each case
 * asserts the exact outcome and is followed by a healthy run.
 */
import { runInChild } from './child-sandbox';
import { BAR_COUNT, CASH, describeCases, useAbuseSandbox, type AbuseCase } from './harness';

const cases: AbuseCase[] = [
  {
    name: 'later bars through every accessor',
    source: `
function attempt(read) {
  try { return String(read()); } catch (error) { return error.name; }
}
function onBar(ctx) {
  if (ctx.bar.index !== 5) return;
  const readers = ['time', 'open', 'high', 'low', 'close', 'volume'];
  ctx.log(readers.map((name) => attempt(() => ctx.history[name](6))).join(','));
  ctx.log(readers.map((name) => attempt(() => ctx[name](-1))).join(','));
  ctx.log(
    attempt(() => ctx.close(NaN)),
    attempt(() => ctx.close(Infinity)),
    attempt(() => ctx.close(-Infinity)),
    attempt(() => ctx.close(2 ** 53)),
    attempt(() => ctx.close(0.5)),
    attempt(() => ctx.close('-1')),
    attempt(() => ctx.close({ valueOf: () => -1 })),
    attempt(() => ctx.close(-0) === ctx.bar.close),
  );
  ctx.log(
    attempt(() => ctx.history.close(-1)),
    attempt(() => ctx.history.close(NaN)),
    attempt(() => ctx.history.close(1e300)),
    attempt(() => ctx.history.close('6')),
    attempt(() => ctx.history.closes(Infinity)),
    attempt(() => ctx.history.closes(1e300).length),
    attempt(() => ctx.history.closes(-0).length),
    attempt(() => ctx.sma(1e9)),
    attempt(() => ctx.sma(0)),
    attempt(() => ctx.ema(2 ** 53)),
  );
}`,
    expected: {
      logs: [
        '[bar 5] RangeError,RangeError,RangeError,RangeError,RangeError,RangeError',
        '[bar 5] RangeError,RangeError,RangeError,RangeError,RangeError,RangeError',
        '[bar 5] RangeError RangeError RangeError NaN RangeError RangeError RangeError true',
        '[bar 5] RangeError RangeError RangeError RangeError RangeError 6 0 NaN RangeError RangeError',
      ],
    },
  },
  {
    name: 'cached ctx objects follow the bar',
    source: `
let cached = null;
function onBar(ctx) {
  if (ctx.bar.index === 0) cached = { ctx, bar: ctx.bar, history: ctx.history, close: ctx.close, getter: Object.getOwnPropertyDescriptor(ctx.bar, 'close').get };
  if (ctx.bar.index === 10) {
    ctx.log(cached.ctx === ctx, cached.bar.index, cached.history.length, cached.close() === ctx.bar.close, cached.getter.call({}) === ctx.bar.close);
  }
}`,
    expected: { logs: ['[bar 10] true 10 11 true true'] },
  },
  {
    name: 'prototype tricks on ctx',
    source: `
function attempt(change) {
  try { change(); return 'changed'; } catch (error) { return error.name; }
}
function onBar(ctx) {
  if (ctx.bar.index === 0) ctx.buy(1);
  if (ctx.bar.index !== 1) return;
  ctx.log(
    attempt(() => Object.setPrototypeOf(ctx, { close: () => 1 })),
    attempt(() => Object.defineProperty(ctx.bar, 'index', { value: 39 })),
    attempt(() => { ctx.history.future = () => 1; }),
    attempt(() => { ctx.state = {}; }),
    attempt(() => { ctx.cash = 1e12; }),
    attempt(() => { Object.prototype.close = () => 1; }),
    attempt(() => Object.defineProperty(Object.prototype, 'orders', { get() { return []; } })),
    Object.isFrozen(ctx), Object.isFrozen(ctx.history), Object.isFrozen(ctx.params),
  );
}`,
    expected: { logs: ['[bar 1] TypeError TypeError TypeError TypeError TypeError TypeError TypeError true true true'], fills: 1 },
  },
  {
    name: 'patching what the runner uses',
    source: `
function attempt(change) {
  try { change(); return 'changed'; } catch (error) { return error.name; }
}
function onBar(ctx) {
  if (ctx.bar.index === 0) ctx.buy(1);
  if (ctx.bar.index !== 1) return;
  ctx.log(
    attempt(() => { Math.max = () => 0; }),
    attempt(() => { Math.abs = () => 0; }),
    attempt(() => { Float64Array = Array; }),
    attempt(() => { Float64Array.prototype.slice = function () { return new Float64Array(0); }; }),
    attempt(() => { Object.getPrototypeOf(Float64Array).prototype.set = function () {}; }),
    attempt(() => { Array.prototype.slice = function () { return []; }; }),
    attempt(() => { Array.prototype.push = function () { return 0; }; }),
    attempt(() => { Reflect.apply = () => 0; }),
    attempt(() => { Object.freeze = (value) => value; }),
    attempt(() => { Number.isFinite = () => true; }),
    attempt(() => { JSON.stringify = () => 'forged'; }),
    attempt(() => { Function.prototype.call = () => 0; }),
    attempt(() => { Map.prototype.get = () => undefined; }),
  );
}`,
    expected: { logs: ['[bar 1] TypeError TypeError TypeError TypeError TypeError TypeError TypeError TypeError TypeError TypeError TypeError TypeError TypeError'], fills: 1 },
  },
  {
    name: 'unfrozen iterator intrinsics',
    // %ArrayIteratorPrototype% and the generator prototypes are not reachable from globals, so
    // they stay writable; the runner never iterates, so patching them changes only strategy code.
    source: `
const arrayIterator = Object.getPrototypeOf([][Symbol.iterator]());
arrayIterator.next = function () { return { done: true, value: undefined }; };
Object.getPrototypeOf(function* () {}).prototype.next = function () { return { done: true }; };
function onBar(ctx) {
  if (ctx.bar.index !== 0) return;
  ctx.buy(1);
  ctx.log([...[1, 2, 3]].length, ctx.history.closes(1).length);
}`,
    expected: { logs: ['[bar 0] 0 1'], fills: 1 },
  },
  {
    name: 'invalid order values',
    source: `
function attempt(call) {
  try { call(); return 'accepted'; } catch (error) { return error.name; }
}
function onBar(ctx) {
  if (ctx.bar.index !== 0) return;
  ctx.log(
    attempt(() => ctx.order(NaN)),
    attempt(() => ctx.order(Infinity)),
    attempt(() => ctx.order(-Infinity)),
    attempt(() => ctx.buy(-1)),
    attempt(() => ctx.buy(0)),
    attempt(() => ctx.sell(0)),
    attempt(() => ctx.sell(NaN)),
    attempt(() => ctx.targetPercent(1.0000001)),
    attempt(() => ctx.targetPercent(-0.1)),
    attempt(() => ctx.targetPercent(NaN)),
    attempt(() => ctx.targetPercent(Infinity)),
    attempt(() => ctx.order()),
  );
}`,
    expected: { logs: ['[bar 0] RangeError RangeError RangeError RangeError RangeError RangeError RangeError RangeError RangeError RangeError RangeError RangeError'], fills: 0 },
  },
  {
    name: 'orders on the last bar',
    source: `function onBar(ctx) { if (ctx.bar.index === ${BAR_COUNT - 1}) { ctx.buy(1e6); ctx.targetPercent(1); } }`,
    expected: { logs: [], fills: 0 },
  },
];

describe('sandbox abuse: honest results', () => {
  const sandbox = useAbuseSandbox();
  describeCases(sandbox, cases);

  test('huge and tiny orders fill within cash', async () => {
    // 1e308 units buys what the cash pays for, -1e308 sells the whole position, and the
    // smallest positive double is a real, negligible order.
    const source = `
function onBar(ctx) {
  if (ctx.bar.index === 0) ctx.order(1e308);
  if (ctx.bar.index === 1) ctx.order(-1e308);
  if (ctx.bar.index === 2) ctx.order(Number.MIN_VALUE);
}`;
    const result = await sandbox.run(source);
    const { bars } = sandbox;
    const bought = CASH / bars.open[1];
    expect(result.fills).toHaveLength(3);
    expect(result.fills[0]).toEqual({ bar: 1, time: bars.time[1], side: 'buy', qty: bought, price: bars.open[1], commission: 0 });
    expect(result.fills[1]).toEqual({ bar: 2, time: bars.time[2], side: 'sell', qty: bought, price: bars.open[2], commission: 0 });
    expect(result.fills[2]).toMatchObject({ bar: 3, side: 'buy', qty: Number.MIN_VALUE });
    for (const value of result.equity) expect(value).toBeGreaterThan(0);
    expect(result.metrics.final_equity).toBe(result.equity[BAR_COUNT - 1]);
    await sandbox.expectServiceWorks();
  });

  test('strategy-side accounting does not count', async () => {
    // The strategy logs its own view and places an order; the host recomputes everything.
    const source = `
function onBar(ctx) {
  if (ctx.bar.index === 0) ctx.buy(2);
  if (ctx.bar.index === 1) ctx.log(ctx.position, ctx.cash === ${CASH} - 2 * ctx.bar.open);
}`;
    const result = await sandbox.run(source);
    expect(result.logs).toEqual(['[bar 1] 2 true']);
    expect(result.metrics.final_equity).toBe(CASH - 2 * sandbox.bars.open[1] + 2 * sandbox.bars.close[BAR_COUNT - 1]);
    await sandbox.expectServiceWorks();
  });

  test('clock reads give bar time', async () => {
    const source = `
class LaterDate extends Date {}
function init(ctx) { ctx.log(Date.now() === ctx.history.length ? 'bad' : 'init', new Date().getTime()); }
function onBar(ctx) {
  if (ctx.bar.index !== 3) return;
  const time = ctx.bar.time;
  ctx.log(Date.now() === time, new Date().getTime() === time, new LaterDate().getTime() === time, Reflect.construct(Date, []).getTime() === time,
    Date() === new Date(time).toString(), Number.isNaN(new Date(undefined).getTime()), typeof performance, typeof Temporal);
}`;
    const first = await sandbox.run(source);
    expect(first.logs).toEqual([`[init] init ${sandbox.bars.time[0]}`, '[bar 3] true true true true true true undefined undefined']);
    const second = await sandbox.run(source);
    expect(second.logs).toEqual(first.logs);
    await sandbox.expectServiceWorks();
  });

  // Intl.DateTimeFormat format() and formatToParts() without a date format V8's current time
  // unless the runner replaces them, which would let a strategy read the wall clock.
  test('Intl formats bar time without a date', async () => {
    const source = `
const format = new Intl.DateTimeFormat('en-US', { timeZone: 'UTC', dateStyle: 'short', timeStyle: 'medium' });
function onBar(ctx) {
  if (ctx.bar.index !== 2) return;
  const parts = (date) => JSON.stringify(format.formatToParts(date));
  ctx.log(format.format() === format.format(ctx.bar.time), parts() === parts(ctx.bar.time), format.format === format.format, format.format());
  ctx.log(new Intl.DateTimeFormat().format(), Intl.DateTimeFormat('en-GB').format(), new Date().toLocaleString());
}`;
    await sandbox.expectOutcome(source, { logs: ['[bar 2] true true true 1/6/21, 12:00:00 AM', '[bar 2] 1/6/2021 06/01/2021 1/6/2021, 12:00:00 AM'] });
    await sandbox.expectServiceWorks();
  });

  // V8 takes the time zone and the locale from the process, so the runner makes local time UTC
  // and en-US the default locale, whatever TZ and LANG the host has.
  test('host time zone and locale do not leak', async () => {
    const source = `
function onBar(ctx) {
  if (ctx.bar.index !== 0) return;
  const date = new Date(ctx.bar.time);
  ctx.log(date.getTimezoneOffset(), date.getHours(), Intl.DateTimeFormat().resolvedOptions().timeZone, new Intl.NumberFormat().resolvedOptions().locale);
  ctx.log(String(date), date.toLocaleString(), (1234.5).toLocaleString(), 'a'.localeCompare('B'));
  ctx.log(new Date(2021, 0, 4, 10).getTime() === Date.UTC(2021, 0, 4, 10), Date.parse('2021-01-04T10:00') === Date.UTC(2021, 0, 4, 10), Date.parse('Jan 4 2021 10:00 GMT+0100') === Date.UTC(2021, 0, 4, 9));
}`;
    const expectedLogs = [
      '[bar 0] 0 0 UTC en-US',
      '[bar 0] Mon Jan 04 2021 00:00:00 GMT+0000 (Coordinated Universal Time) 1/4/2021, 12:00:00 AM 1,234.5 -1',
      '[bar 0] true true true',
    ];
    const report = await runInChild([source], {}, 10_000, { TZ: 'America/New_York', LANG: 'de_DE.UTF-8', LC_ALL: 'de_DE.UTF-8' });
    expect(report.outcomes[0]).toEqual({ ok: true, fills: 0, logs: expectedLogs, finalEquity: CASH });
    expect(report.outcomes[1]).toMatchObject({ ok: true, fills: 1 });
    await sandbox.expectOutcome(source, { logs: expectedLogs });
  });
});
