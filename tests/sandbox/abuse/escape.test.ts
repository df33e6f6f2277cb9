/**
 * Escape attempts: the published vm2 techniques translated to isolated-vm, plus direct reaches
 * for host globals, module loaders, isolated-vm objects and the runner's own hooks. Each case
 * asserts its exact outcome and is followed by a healthy run on the same worker thread.
 */
import { describeCases, FILENAME, SHORT_WALL_CLOCK, useAbuseSandbox, type AbuseCase } from './harness';

/** ECMAScript and V8 globals of an isolated-vm 7 context, plus V8's console and the runner hooks. */
const EXPECTED_GLOBALS = [
  'Object', 'Function', 'Array', 'Number', 'parseFloat', 'parseInt', 'Infinity', 'NaN', 'undefined', 'Boolean', 'String',
  'Symbol', 'Date', 'Promise', 'RegExp', 'Error', 'AggregateError', 'EvalError', 'RangeError', 'ReferenceError',
  'SyntaxError', 'TypeError', 'URIError', 'globalThis', 'JSON', 'Math', 'Intl', 'ArrayBuffer', 'Atomics', 'Uint8Array',
  'Int8Array', 'Uint16Array', 'Int16Array', 'Uint32Array', 'Int32Array', 'BigUint64Array', 'BigInt64Array',
  'Uint8ClampedArray', 'Float32Array', 'Float64Array', 'DataView', 'Map', 'BigInt', 'Set', 'Iterator', 'WeakMap', 'WeakSet',
  'Proxy', 'Reflect', 'FinalizationRegistry', 'WeakRef', 'decodeURI', 'decodeURIComponent', 'encodeURI',
  'encodeURIComponent', 'escape', 'unescape', 'eval', 'isFinite', 'isNaN', 'console', 'SuppressedError', 'DisposableStack',
  'AsyncDisposableStack', 'Float16Array', 'SharedArrayBuffer', 'WebAssembly', '__backtestrSetup', '__backtestrRegister',
  '__backtestrLoadFailed', '__backtestrProgress', '__backtestrRun',
];

/** Names a host or an embedder could leak into a context; none may exist inside. */
const HOST_NAMES = [
  'process', 'require', 'module', 'exports', '__dirname', '__filename', 'Buffer', 'global', 'self', 'setTimeout',
  'setInterval', 'setImmediate', 'queueMicrotask', 'structuredClone', 'fetch', 'performance', 'crypto', 'navigator',
  'ivm', '_ivm', 'Reference', 'ExternalCopy', 'Isolate', 'Context', 'Script', 'Callback', 'Temporal',
];

const cases: AbuseCase[] = [
  {
    name: 'only standard globals exist',
    source: `
const expected = new Set(${JSON.stringify(EXPECTED_GLOBALS)});
function onBar(ctx) {
  if (ctx.bar.index !== 0) return;
  const extra = Reflect.ownKeys(globalThis).filter((key) => !expected.has(key)).map(String);
  ctx.log(extra.length === 0 ? 'none' : extra.join(','));
}`,
    expected: { logs: ['[bar 0] none'] },
  },
  {
    name: 'host and isolated-vm names are undefined',
    source: `
function onBar(ctx) {
  if (ctx.bar.index !== 0) return;
  const names = ${JSON.stringify(HOST_NAMES)};
  ctx.log(names.filter((name) => typeof globalThis[name] !== 'undefined').join(',') || 'none');
}`,
    expected: { logs: ['[bar 0] none'] },
  },
  {
    name: 'no host object reachable by walking',
    // Walks every property and prototype from the global object and ctx; an object of another
    // realm (a host Reference, ExternalCopy or Isolate) would have a constructor that is not one
    // of this context's own functions.
    source: `
function onBar(ctx) {
  if (ctx.bar.index !== 0) return;
  const seen = new Set();
  const foreign = [];
  const queue = [globalThis, ctx];
  while (queue.length > 0) {
    const value = queue.pop();
    if (value === null || (typeof value !== 'object' && typeof value !== 'function') || seen.has(value)) continue;
    seen.add(value);
    if (!(value instanceof Object) && Object.getPrototypeOf(value) !== null) foreign.push(String(value));
    queue.push(Object.getPrototypeOf(value));
    for (const key of Reflect.ownKeys(value)) {
      const descriptor = Object.getOwnPropertyDescriptor(value, key);
      if ('value' in descriptor) queue.push(descriptor.value);
      else queue.push(descriptor.get, descriptor.set);
    }
  }
  ctx.log(foreign.length, seen.size > 500);
}`,
    expected: { logs: ['[bar 0] 0 true'] },
  },
  {
    name: 'Function constructor reaches only the isolate',
    source: `
function attempt(read) {
  try { return String(read()); } catch (error) { return error.name; }
}
function onBar(ctx) {
  if (ctx.bar.index !== 0) return;
  ctx.log(
    attempt(() => ctx.constructor.constructor('return typeof process')()),
    attempt(() => ctx.log.constructor('return this')() === globalThis),
    attempt(() => (async function () {}).constructor('return typeof require')()),
    attempt(() => Object.getPrototypeOf(function* () {}).constructor('return typeof module')().next().value),
    attempt(() => Function('return this.constructor.constructor("return typeof process")()')()),
    attempt(() => this.constructor),
  );
}`,
    expected: { logs: ['[bar 0] undefined true [object Promise] undefined undefined TypeError'] },
  },
  {
    name: 'sloppy onBar reads no caller',
    // A function made by the Function constructor is sloppy, so V8 would report a sloppy caller;
    // the runner is strict, which V8 censors to null.
    source: "const onBar = Function('ctx', 'if (ctx.bar.index === 0) ctx.log(String(arguments.callee.caller));');",
    expected: { logs: ['[bar 0] null'] },
  },
  {
    name: 'dynamic import is not supported',
    source: `
let outcome = 'pending';
Function('return import("node:fs")')().then(() => { outcome = 'loaded'; }, (error) => { outcome = 'rejected ' + error.name; });
let evalOutcome = 'pending';
eval('import("node:child_process")').then(() => { evalOutcome = 'loaded'; }, (error) => { evalOutcome = 'rejected ' + error.name; });
function onBar(ctx) { if (ctx.bar.index === 0) ctx.log(outcome, evalOutcome); }`,
    expected: { logs: ['[bar 0] rejected Error rejected Error'] },
  },
  {
    name: 'prepareStackTrace cannot be installed',
    source: `
function attempt(change) {
  try { change(); return 'changed'; } catch (error) { return error.name; }
}
let hookCalls = 0;
class HookedError extends Error {
  static prepareStackTrace(error, callSites) { hookCalls++; return callSites; }
}
function onBar(ctx) {
  if (ctx.bar.index !== 0) return;
  ctx.log(
    attempt(() => { Error.prepareStackTrace = (error, callSites) => callSites; }),
    attempt(() => Object.defineProperty(Error, 'prepareStackTrace', { get() { hookCalls++; } })),
    Reflect.set(Error, 'prepareStackTrace', () => 1),
    attempt(() => { Error.stackTraceLimit = Infinity; }),
    typeof Error.prepareStackTrace,
    typeof new HookedError('x').stack,
    hookCalls,
  );
}`,
    expected: { logs: ['[bar 0] TypeError TypeError false TypeError undefined string 0'] },
  },
  {
    name: 'prepareStackTrace on async errors',
    // The async form: errors created and read in promise callbacks and an async function.
    source: `
let hookCalls = 0;
let report = 'pending';
class HookedError extends Error {
  static prepareStackTrace() { hookCalls++; return {}; }
}
async function fail() { await null; throw new HookedError('late'); }
fail().catch((error) => { report = typeof error.stack + ' ' + Array.isArray(error.stack); });
function onBar(ctx) { if (ctx.bar.index === 0) ctx.log(report, hookCalls, Object.isFrozen(Error)); }`,
    expected: { logs: ['[bar 0] string false 0 true'] },
  },
  {
    name: 'captureStackTrace on frozen objects',
    source: `
function attempt(change) {
  try { change(); return 'changed'; } catch (error) { return error.name; }
}
function onBar(ctx) {
  if (ctx.bar.index !== 0) return;
  const holder = {};
  Error.captureStackTrace(holder, onBar);
  ctx.log(
    attempt(() => Error.captureStackTrace(ctx)),
    attempt(() => Error.captureStackTrace(ctx.bar)),
    attempt(() => Error.captureStackTrace(Object.prototype)),
    attempt(() => Error.captureStackTrace(Error)),
    typeof holder.stack,
    holder.stack.includes('/') || holder.stack.includes('node:'),
  );
}`,
    expected: { logs: ['[bar 0] TypeError TypeError TypeError TypeError string false'] },
  },
  {
    name: 'stack traces name no host file',
    source: `
function onBar(ctx) {
  if (ctx.bar.index !== 0) return;
  const frames = new Error('probe').stack.split('\\n').slice(1).map((frame) => frame.trim());
  ctx.log(frames.length, frames[0], frames.every((frame) => !frame.includes('/') && !frame.includes('node:')));
}`,
    expected: { logs: [`[bar 0] 3 at onBar (${FILENAME}:4:18) true`] },
  },
  {
    name: 'captureStackTrace into a proxy',
    // V8 refuses a proxy target outright, so the looping trap never runs.
    source: `
function onBar(ctx) {
  if (ctx.bar.index === 2) Error.captureStackTrace(new Proxy({}, { defineProperty() { for (;;) {} }, set() { for (;;) {} } }));
}`,
    options: SHORT_WALL_CLOCK,
    expected: { code: 'E_STRATEGY_RUNTIME', details: { file: FILENAME, phase: 'bar', line: 3, column: 34, bar: 2 } },
  },
  {
    name: 'WebAssembly is not available',
    // isolated-vm does not count WebAssembly memory against the limit, so the runner removes it.
    source: `
const bytes = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 7, 1, 96, 2, 127, 127, 1, 127, 3, 2, 1, 0, 7, 7, 1, 3, 97, 100, 100, 0, 0, 10, 9, 1, 7, 0, 32, 0, 32, 1, 106, 11]);
function onBar(ctx) { if (ctx.bar.index === 0) ctx.log(typeof WebAssembly, 'WebAssembly' in globalThis, bytes.length); }`,
    expected: { logs: ['[bar 0] undefined false 41'] },
  },
  {
    name: 'bar data is never shared memory',
    source: `
function onBar(ctx) {
  if (ctx.bar.index !== 3) return;
  const closes = ctx.history.closes(4);
  closes[0] = -1;
  ctx.log(Object.prototype.toString.call(closes.buffer), typeof SharedArrayBuffer, closes.buffer.byteLength, ctx.history.close(0) > 0);
}`,
    expected: { logs: ['[bar 3] [object ArrayBuffer] undefined 32 true'] },
  },
  {
    name: 'shadowed register returns a thenable',
    // A block-scoped declaration shadows the hook that the wrapper's tail calls, so the script's
    // completion value becomes this thenable; nothing may call its then().
    source: `
function onBar(ctx) { ctx.buy(1); }
function __backtestrRegister() { return { then() { for (;;) {} } }; }`,
    options: SHORT_WALL_CLOCK,
    expected: { code: 'E_STRATEGY_COMPILE', details: { file: FILENAME } },
  },
  {
    name: 'shadowed register returns a proxy',
    source: `
function onBar(ctx) { ctx.buy(1); }
const trap = () => { for (;;) {} };
function __backtestrRegister() { return new Proxy({}, { get: trap, ownKeys: trap, getPrototypeOf: trap, getOwnPropertyDescriptor: trap }); }`,
    options: SHORT_WALL_CLOCK,
    expected: { code: 'E_STRATEGY_COMPILE', details: { file: FILENAME } },
  },
  {
    name: 'runner replayed during load',
    // Registering a scout onBar and running the loop during load would read every bar before
    // the real run; the host's own run call then refuses to report any result.
    source: `
const future = [];
__backtestrRegister((ctx) => { future.push(ctx.close()); }, undefined);
__backtestrRun();
function onBar(ctx) { if (ctx.bar.index === 0 && future.length > 0) ctx.buy(1); }`,
    expected: { code: 'E_STRATEGY_RUNTIME', details: { file: FILENAME, phase: 'load' } },
  },
  {
    name: 'setup hook called again',
    source: `
let outcome = 'accepted';
try {
  const column = new Float64Array(1);
  __backtestrSetup(column, column, column, column, column, column, {}, { cash: 1e12, commission: 0, maxOrders: 1e6, maxLogLines: 1e6, seed: 1 });
} catch (error) {
  outcome = error.name;
}
function onBar(ctx) { if (ctx.bar.index === 0) ctx.log(outcome, ctx.cash, ctx.history.length); }`,
    expected: { logs: ['[bar 0] Error 100000 1'] },
  },
  {
    name: 'global var rebinds Float64Array',
    source: 'var Float64Array = function () { return []; };\nfunction onBar(ctx) { ctx.buy(1); }',
    expected: { code: 'E_STRATEGY_RUNTIME', details: { file: FILENAME, phase: 'load', line: 1, column: 20 } },
  },
  {
    name: 'block-scoped Float64Array shadow',
    source: 'function Float64Array() { return []; }\nfunction onBar(ctx) { if (ctx.bar.index === 0) { ctx.buy(1); ctx.log(ctx.history.closes(2).length); } }',
    expected: { logs: ['[bar 0] 1'], fills: 1 },
  },
];

describe('sandbox abuse: escapes', () => {
  const sandbox = useAbuseSandbox();
  describeCases(sandbox, cases);

  test('global let over a runner hook', async () => {
    // The source tries to close the wrapper's try block so that the let becomes a script-scope
    // binding over the hook that the host calls; the wrapper must keep it a syntax error.
    const source = 'function onBar(ctx) {}\n} catch (e) {}\nlet __backtestrRun = () => ({ status: "ok" });\ntry {';
    await sandbox.expectOutcome(source, { code: 'E_STRATEGY_COMPILE', details: { file: FILENAME, line: 2, column: 1 } });
    await sandbox.expectServiceWorks();
  });
});
