/**
 * What strategy code can and cannot reach inside its isolate: no host objects, no later bars,
 * no way to patch the runner, and deterministic time and randomness.
 */
import { runBacktest } from '../../services/sandbox/backtest';
import type { BacktestResult } from '../../services/sandbox/types';
import { rejection, syntheticBars } from './fixtures';

const bars = syntheticBars(40);
const run = (source: string, filename = 'probe.js'): Promise<BacktestResult> => runBacktest({ source, filename, bars, params: { level: 2 } });

describe('sandbox isolation', () => {
  test('throw at bar 17 reports bar, line and column', async () => {
    const source = ['function onBar(ctx) {', '  if (ctx.bar.index === 17) {', "    throw new Error('boom');", '  }', '}'].join('\n');
    const error = await rejection(run(source, 'thrower.ts'));
    expect(error.code).toBe('E_STRATEGY_RUNTIME');
    expect(error.details).toEqual({ file: 'thrower.ts', phase: 'bar', line: 3, column: 11, bar: 17 });
  });

  test('error in a helper reports the throwing line', async () => {
    const source = ['function divide(a) {', '  return a.missing.value;', '}', 'function onBar(ctx) { if (ctx.bar.index === 3) divide({}); }'].join('\n');
    const error = await rejection(run(source));
    expect(error.details).toMatchObject({ line: 2, column: 20, bar: 3, phase: 'bar' });
  });

  test('later bars cannot be read', async () => {
    const source = `
function attempt(read) {
  try { return String(read()); } catch (error) { return error.name; }
}
function onBar(ctx) {
  if (ctx.bar.index !== 5) return;
  ctx.log(
    attempt(() => ctx.history.close(6)),
    attempt(() => ctx.close(-1)),
    attempt(() => ctx.history.closes(1000).length),
    attempt(() => ctx.history.length),
    attempt(() => ctx.close(6)),
  );
  const reachable = [];
  const seen = new Set();
  const visit = (value, depth) => {
    if (value === null || (typeof value !== 'object' && typeof value !== 'function') || seen.has(value) || depth > 4) return;
    seen.add(value);
    if (ArrayBuffer.isView(value)) reachable.push(value.length);
    for (const key of Reflect.ownKeys(value)) {
      const descriptor = Object.getOwnPropertyDescriptor(value, key);
      if ('value' in descriptor) visit(descriptor.value, depth + 1);
    }
  };
  visit(globalThis, 0);
  visit(ctx, 0);
  visit(ctx.bar, 0);
  visit(ctx.history, 0);
  ctx.log(reachable.length);
}`;
    const result = await run(source);
    expect(result.logs).toEqual(['[bar 5] RangeError RangeError 6 6 NaN', '[bar 5] 0']);
  });

  // V8's own console exists in every context but prints nothing without an inspector.
  test('host globals are undefined inside', async () => {
    const source = `
function onBar(ctx) {
  if (ctx.bar.index !== 0) return;
  ctx.log(typeof process, typeof require, typeof globalThis.process, typeof module, typeof setTimeout, typeof fetch, typeof console, typeof __backtestrRun);
}`;
    const result = await run(source);
    expect(result.logs).toEqual(['[bar 0] undefined undefined undefined undefined undefined undefined object function']);
  });

  test('intrinsics and ctx are frozen', async () => {
    const source = `
function attempt(change) {
  try { change(); return 'changed'; } catch (error) { return error.name; }
}
function onBar(ctx) {
  if (ctx.bar.index !== 0) return;
  ctx.log(
    attempt(() => { Array.prototype.push = function () {}; }),
    attempt(() => { Float64Array.prototype.slice = function () {}; }),
    attempt(() => { Math = {}; }),
    attempt(() => { ctx.order = function () {}; }),
    attempt(() => { ctx.params.level = 3; }),
    attempt(() => { Error.prepareStackTrace = function () {}; }),
    ctx.params.level,
  );
}`;
    const result = await run(source);
    expect(result.logs).toEqual(['[bar 0] TypeError TypeError TypeError TypeError TypeError TypeError 2']);
  });

  test('thenables and getters run no host code', async () => {
    const source = `
let thenCalls = 0;
function onBar(ctx) {
  if (ctx.bar.index === 39) ctx.log('then calls', thenCalls);
  return {
    then(resolve) { thenCalls++; resolve(globalThis); },
    get value() { thenCalls++; return 1; },
  };
}`;
    const result = await run(source);
    expect(result.logs).toEqual(['[bar 39] then calls 0']);
    expect(Object.getPrototypeOf(result.logs)).toBe(Array.prototype);
    expect(typeof (globalThis as Record<string, unknown>).then).toBe('undefined');
  });

  test('async onBar is rejected', async () => {
    const error = await rejection(run('async function onBar(ctx) { await null; ctx.buy(1); }'));
    expect(error.code).toBe('E_STRATEGY_RUNTIME');
    expect(error.details.file).toBe('probe.js');
  });

  test('error objects with hostile getters stay inside', async () => {
    const source = `
class Sneaky extends Error {
  get message() { return { toString() { throw new Error('nested'); } }; }
}
function onBar(ctx) { if (ctx.bar.index === 4) throw new Sneaky(); }`;
    const error = await rejection(run(source));
    expect(error.code).toBe('E_STRATEGY_RUNTIME');
    expect(error.details.bar).toBe(4);
  });

  test('strategy cannot run the runner itself', async () => {
    const error = await rejection(run('function onBar() {}\n__backtestrRun();'));
    expect(error.code).toBe('E_STRATEGY_RUNTIME');
  });

  test('time and randomness are deterministic', async () => {
    const source = `
const draws = [];
function onBar(ctx) {
  draws.push(Math.random());
  if (ctx.bar.index === 2) ctx.log(Date.now() === ctx.bar.time, new Date().getTime() === ctx.bar.time, draws.every((x) => x >= 0 && x < 1), new Set(draws).size, draws);
}`;
    const first = await run(source);
    const second = await run(source);
    expect(first.logs[0]).toMatch(/^\[bar 2\] true true true 3 \[/);
    expect(second.logs).toEqual(first.logs);
  });

  test('params read only their own keys', async () => {
    const source = `
function onBar(ctx) {
  if (ctx.bar.index !== 0) return;
  const params = ctx.params;
  ctx.log(Object.getPrototypeOf(params) === null, Object.isFrozen(params), Object.keys(params).join(','));
  ctx.log(params.level, params.__proto__, params.constructor, params.toString, params.hasOwnProperty);
}`;
    const result = await runBacktest({ source, filename: 'probe.js', bars, params: JSON.parse('{"level": 2, "__proto__": 3, "constructor": 4}') as Record<string, number> });
    expect(result.logs).toEqual(['[bar 0] true true level,__proto__,constructor', '[bar 0] 2 3 4 undefined undefined']);
  });

  test('ctx, bar and history keep their own properties', async () => {
    const source = `
function onBar(ctx) {
  if (ctx.bar.index !== 1) return;
  const accessors = (value) => Object.keys(value).filter((key) => typeof Object.getOwnPropertyDescriptor(value, key).get === 'function').join(',');
  ctx.log(Object.keys(ctx).join(','));
  ctx.log(accessors(ctx), '|', accessors(ctx.bar), '|', accessors(ctx.history));
  ctx.log(Object.isFrozen(ctx), Object.isFrozen(ctx.bar), Object.isFrozen(ctx.history), Object.getPrototypeOf(ctx) === Object.prototype);
}`;
    const result = await run(source);
    expect(result.logs).toEqual([
      '[bar 1] params,state,bar,history,position,cash,equity,time,open,high,low,close,volume,sma,ema,rsi,atr,stddev,highest,lowest,order,buy,sell,targetPercent,log',
      '[bar 1] params,position,cash,equity | index,time,open,high,low,close,volume | length',
      '[bar 1] true true true true',
    ]);
  });

  test('orders are rejected outside onBar', async () => {
    const error = await rejection(run('function init(ctx) { ctx.buy(1); }\nfunction onBar() {}'));
    expect(error.code).toBe('E_STRATEGY_RUNTIME');
    expect(error.details.phase).toBe('init');
  });
});
