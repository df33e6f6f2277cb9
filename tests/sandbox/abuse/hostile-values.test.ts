/**
 * Hostile values: proxies whose traps throw, loop or exhaust the stack; Symbol.species; thenables
 * and async functions; objects with Node's inspect hook, toJSON, toString or valueOf; getters that
 * return a different value on each read. None of their methods may run in the host, and none may
 * change what the run reports.
 */
import {
  describeCases,
  runtimeErrorAt,
  SHORT_WALL_CLOCK,
  timeLimitAt,
  useAbuseSandbox,
  FILENAME,
  type AbuseCase,
} from './harness';

const cases: AbuseCase[] = [
  {
    name: 'thrown proxy whose get trap throws',
    source: "function onBar(ctx) { if (ctx.bar.index === 2) throw new Proxy(new Error('x'), { get() { throw new Error('trap'); } }); }",
    expected: runtimeErrorAt(2),
  },
  {
    name: 'thrown revoked proxy',
    source: "function onBar(ctx) { if (ctx.bar.index === 2) { const pair = Proxy.revocable(new Error('x'), {}); pair.revoke(); throw pair.proxy; } }",
    expected: runtimeErrorAt(2),
  },
  {
    name: 'thrown proxy exhausts the stack',
    source: `
function dive() { return dive(); }
function onBar(ctx) { if (ctx.bar.index === 2) throw new Proxy(new Error('x'), { get: dive, getPrototypeOf: dive }); }`,
    expected: runtimeErrorAt(2),
  },
  {
    name: 'thrown proxy whose get trap loops',
    source: "function onBar(ctx) { if (ctx.bar.index === 2) throw new Proxy(new Error('x'), { get() { for (;;) {} } }); }",
    options: SHORT_WALL_CLOCK,
    expected: timeLimitAt(2),
  },
  {
    name: 'proxy thrown while loading',
    source: "throw new Proxy({}, { get() { throw new Error('trap'); }, getPrototypeOf() { throw new Error('trap'); } });\nfunction onBar(ctx) {}",
    expected: { code: 'E_STRATEGY_RUNTIME', details: { file: FILENAME, phase: 'load' } },
  },
  {
    name: 'returned proxy exhausts the stack',
    // The runner asks whether the returned value is a promise; the trap's stack overflow there
    // must count as "not a promise" and leave the run intact.
    source: `
function dive() { return dive(); }
function onBar(ctx) {
  if (ctx.bar.index === 0) ctx.buy(1);
  if (ctx.bar.index < 3) return new Proxy({}, { getPrototypeOf: dive, get: dive });
}`,
    expected: { logs: [], fills: 1 },
  },
  {
    name: 'returned proxy claims to be a promise',
    source: 'function onBar(ctx) { if (ctx.bar.index === 4) return new Proxy({}, { getPrototypeOf() { return Promise.prototype; } }); }',
    expected: runtimeErrorAt(4),
  },
  {
    name: 'returned proxy loops in getPrototypeOf',
    source: 'function onBar(ctx) { if (ctx.bar.index === 4) return new Proxy({}, { getPrototypeOf() { for (;;) {} } }); }',
    options: SHORT_WALL_CLOCK,
    expected: timeLimitAt(4),
  },
  {
    name: 'proxies as ctx arguments',
    source: `
const trap = () => { throw new SyntaxError('trap'); };
const hostile = new Proxy({}, { get: trap, ownKeys: trap, getPrototypeOf: trap, has: trap });
function attempt(call) {
  try { call(); return 'accepted'; } catch (error) { return error.name; }
}
function onBar(ctx) {
  if (ctx.bar.index !== 3) return;
  ctx.log(
    attempt(() => ctx.buy(hostile)),
    attempt(() => ctx.order(hostile)),
    attempt(() => ctx.targetPercent(hostile)),
    attempt(() => ctx.sma(hostile)),
    attempt(() => ctx.close(hostile)),
    attempt(() => ctx.history.close(hostile)),
    attempt(() => ctx.history.closes(hostile)),
  );
  ctx.log(hostile);
}`,
    expected: { logs: ['[bar 3] SyntaxError SyntaxError SyntaxError SyntaxError SyntaxError SyntaxError SyntaxError', '[bar 3] [value that could not be printed]'], fills: 0 },
  },
  {
    name: 'stack exhausted around ctx.order',
    // Each unwinding frame retries the order; calls near the stack limit fail inside the runner.
    // Only complete orders may count, and the order limit must still end the run.
    source: 'function dive(ctx) { try { dive(ctx); } catch (error) { ctx.order(1); } }\nfunction onBar(ctx) { dive(ctx); }',
    options: { maxOrders: 2 },
    expected: { code: 'E_LIMIT_ORDERS', details: { limit: 'maxOrders', value: 2, bar: 2 } },
  },
  {
    name: 'stack exhausted around ctx.log',
    source: "function dive(ctx) { try { dive(ctx); } catch (error) { ctx.log('unwound'); } }\nfunction onBar(ctx) { if (ctx.bar.index < 2) dive(ctx); }",
    expected: { logs: ['[bar 0] unwound', '[bar 1] unwound'] },
  },
  {
    name: 'promise subclass with species returned',
    source: `
class Sneaky extends Promise {
  static get [Symbol.species]() { for (;;) {} }
  then() { for (;;) {} }
}
function onBar(ctx) { if (ctx.bar.index === 3) return new Sneaky(() => {}); }`,
    options: SHORT_WALL_CLOCK,
    expected: runtimeErrorAt(3),
  },
  {
    name: 'species overrides are refused',
    source: `
function attempt(change) {
  try { change(); return 'changed'; } catch (error) { return error.name; }
}
const loop = { get() { for (;;) {} } };
function onBar(ctx) {
  if (ctx.bar.index === 0) ctx.buy(1);
  if (ctx.bar.index !== 1) return;
  ctx.log(
    attempt(() => Object.defineProperty(Array, Symbol.species, loop)),
    attempt(() => Object.defineProperty(Promise, Symbol.species, loop)),
    attempt(() => Object.defineProperty(Float64Array, Symbol.species, loop)),
    attempt(() => Object.defineProperty(Object.getPrototypeOf(Float64Array), Symbol.species, loop)),
    attempt(() => Object.defineProperty(Array.prototype, 'constructor', loop)),
    attempt(() => Object.defineProperty(Promise.prototype, 'then', loop)),
  );
}`,
    expected: { logs: ['[bar 1] TypeError TypeError TypeError TypeError TypeError TypeError'], fills: 1 },
  },
  {
    name: 'thenables from init and onBar',
    source: `
let thenCalls = 0;
const thenable = { then() { thenCalls++; for (;;) {} } };
function init(ctx) { return thenable; }
function onBar(ctx) {
  if (ctx.bar.index === 0) ctx.buy(1);
  if (ctx.bar.index === 39) ctx.log('then calls', thenCalls);
  return thenable;
}`,
    options: SHORT_WALL_CLOCK,
    expected: { logs: ['[bar 39] then calls 0'], fills: 1 },
  },
  {
    name: 'async onBar',
    source: 'async function onBar(ctx) { await null; }',
    expected: runtimeErrorAt(0),
  },
  {
    name: 'async onBar orders after await',
    // The continuation runs after the bar loop, where ctx.buy throws; that rejection is the
    // error reported, and no order is recorded.
    source: 'async function onBar(ctx) { await null; ctx.buy(1); }',
    expected: { code: 'E_STRATEGY_RUNTIME', details: { file: FILENAME, phase: 'async', line: 1, column: 45 } },
  },
  {
    name: 'async init logs after it returned',
    source: "async function init(ctx) { await null; ctx.log('late'); }\nfunction onBar(ctx) {}",
    expected: { code: 'E_STRATEGY_RUNTIME', details: { file: FILENAME, phase: 'async', line: 1, column: 44 } },
  },
  {
    name: 'order placed from a microtask',
    // The callback runs after the bar loop, when orders are closed; the strategy catches the
    // refusal, so the run succeeds with no fill.
    source: `
let refusal = 'none';
function onBar(ctx) {
  if (ctx.bar.index === 0) Promise.resolve().then(() => ctx.buy(1)).catch((error) => { refusal = error.name; });
  if (ctx.bar.index === 39) ctx.log(refusal);
}`,
    expected: { logs: ['[bar 39] none'], fills: 0 },
  },
  {
    name: 'thrown object with inspect and then',
    // Both hooks loop, so a host that called either would hit the time limit instead.
    source: `
function onBar(ctx) {
  if (ctx.bar.index === 1) {
    throw {
      then() { for (;;) {} },
      [Symbol.for('nodejs.util.inspect.custom')]() { for (;;) {} },
      toJSON() { for (;;) {} },
      toString() { return 'plain'; },
    };
  }
}`,
    options: SHORT_WALL_CLOCK,
    expected: runtimeErrorAt(1),
  },
  {
    name: 'logged objects with conversion hooks',
    source: `
const inspect = Symbol.for('nodejs.util.inspect.custom');
function onBar(ctx) {
  if (ctx.bar.index !== 0) return;
  ctx.log({ [inspect]() { return 'inspected'; }, plain: 1 });
  ctx.log({ toJSON() { return 'json'; } }, { toString() { return 'text'; } }, { valueOf() { return 7; } });
  ctx.log({ [Symbol.toPrimitive]() { return 'primitive'; } }, [1, { toJSON: () => undefined }]);
}`,
    expected: { logs: ['[bar 0] {"plain":1}', '[bar 0] "json" {} {}', '[bar 0] {} [1,null]'] },
  },
  {
    name: 'getters change on every read',
    source: `
let reads = 0;
const shifty = { get value() { reads++; return reads; } };
function onBar(ctx) {
  if (ctx.bar.index !== 0) return;
  ctx.log(shifty);
  ctx.log(shifty, shifty);
  ctx.log('reads', reads);
}`,
    expected: { logs: ['[bar 0] {"value":1}', '[bar 0] {"value":2} {"value":3}', '[bar 0] reads 3'] },
  },
  {
    name: 'returned getters are never read',
    source: `
let reads = 0;
function onBar(ctx) {
  if (ctx.bar.index === 39) ctx.log('reads', reads);
  return { get then() { reads++; return undefined; }, get status() { reads++; return 'ok'; } };
}`,
    expected: { logs: ['[bar 39] reads 0'] },
  },
  {
    name: 'quantity with conversion hooks',
    source: `
let conversions = 0;
const quantity = { valueOf() { conversions++; return 1; }, [Symbol.toPrimitive]() { conversions++; return 1; } };
function attempt(call) {
  try { call(); return 'accepted'; } catch (error) { return error.name; }
}
function onBar(ctx) {
  if (ctx.bar.index !== 0) return;
  ctx.log(attempt(() => ctx.buy(quantity)), attempt(() => ctx.order(new Number(1))), attempt(() => ctx.order(1n)), attempt(() => ctx.order('1')));
}`,
    expected: { logs: ['[bar 0] RangeError RangeError RangeError RangeError'], fills: 0 },
  },
];

describe('sandbox abuse: hostile values', () => {
  const sandbox = useAbuseSandbox();
  describeCases(sandbox, cases);

  test('error getters change on every read', async () => {
    const source = `
let reads = 0;
class Shifty extends Error {
  get name() { reads++; return 'Name' + reads; }
  get message() { reads++; return 'message ' + reads; }
}
function onBar(ctx) { if (ctx.bar.index === 6) throw new Shifty(); }`;
    await sandbox.expectOutcome(source, { code: 'E_STRATEGY_RUNTIME', details: { file: FILENAME, phase: 'bar', line: 7, column: 54, bar: 6 } });
    await sandbox.expectServiceWorks();
  });
});
