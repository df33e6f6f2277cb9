/**
 * Resource abuse: endless loops in every phase, never-settling promises, stack overflows,
 * unbounded allocation and huge or deep log values. Each case ends with a named limit or a
 * bounded result, and the same worker thread serves a healthy run afterwards.
 */
import { runInChild } from './child-sandbox';
import {
  describeCases,
  FILENAME,
  SHORT_CPU,
  SHORT_WALL_CLOCK,
  SMALL_MEMORY,
  timeLimitAt,
  useAbuseSandbox,
  type AbuseCase,
  type Outcome,
} from './harness';

/**
 * A CPU or memory stop disposes the isolate, so the bar is the last one the runner reported and
 * the details mark it with `barExact: false`.
 */
const cpuLimitAt = (bar?: number): Outcome => ({
  code: 'E_LIMIT_CPU',
  details: bar === undefined ? { limit: 'cpuTimeMs', value: 300 } : { limit: 'cpuTimeMs', value: 300, bar, barExact: false },
});

const MEMORY_LIMIT_AT_0: Outcome = { code: 'E_LIMIT_MEMORY', details: { limit: 'memoryLimitMb', value: 32, bar: 0, barExact: false } };

/** 3 blocks of 16 MiB: six times an 8 MB limit, above the two to three times V8 may overshoot. */
const BLOCKS = 3;
const TINY_MEMORY = { memoryLimitMb: 8 };

const cases: AbuseCase[] = [
  {
    name: 'endless loop in onBar',
    source: 'function onBar(ctx) { if (ctx.bar.index === 7) for (;;) {} }',
    options: SHORT_WALL_CLOCK,
    expected: timeLimitAt(7),
  },
  {
    name: 'endless loop in init',
    source: 'function init(ctx) { for (;;) {} }\nfunction onBar(ctx) {}',
    options: SHORT_WALL_CLOCK,
    expected: timeLimitAt(),
  },
  {
    name: 'endless loop while loading',
    source: 'for (;;) {}\nfunction onBar(ctx) {}',
    options: SHORT_WALL_CLOCK,
    expected: timeLimitAt(),
  },
  {
    name: 'endless loop in a getter',
    source: "Object.defineProperty(globalThis, 'spin', { get() { for (;;) {} } });\nfunction onBar(ctx) { if (ctx.bar.index === 3) return globalThis.spin; }",
    options: SHORT_WALL_CLOCK,
    expected: timeLimitAt(3),
  },
  {
    name: 'endless busy loop under CPU limit',
    source: 'function onBar(ctx) { if (ctx.bar.index === 7) for (;;) {} }',
    options: SHORT_CPU,
    expected: cpuLimitAt(7),
  },
  {
    name: 'endless promise chain',
    source: 'function spin() { return Promise.resolve().then(spin); }\nfunction onBar(ctx) { if (ctx.bar.index === 0) spin(); }',
    options: SHORT_CPU,
    expected: cpuLimitAt(39),
  },
  {
    name: 'endless await loop from load',
    source: '(async () => { for (;;) await null; })();\nfunction onBar(ctx) {}',
    options: SHORT_CPU,
    expected: cpuLimitAt(),
  },
  {
    name: 'Atomics.wait without shared memory',
    // SharedArrayBuffer is removed, and Atomics.wait rejects any other buffer at once.
    source: 'function onBar(ctx) { if (ctx.bar.index === 3) Atomics.wait(new Int32Array(4), 0, 0); }',
    options: SHORT_WALL_CLOCK,
    expected: { code: 'E_STRATEGY_RUNTIME', details: { file: FILENAME, phase: 'bar', line: 1, column: 56, bar: 3 } },
  },
  {
    name: 'never-settling promises',
    source: `
const never = new Promise(() => {});
(async () => { await never; })();
function init(ctx) { return never; }
function onBar(ctx) {
  if (ctx.bar.index === 0) ctx.buy(1);
  never.then(() => ctx.log('settled'));
}`,
    options: SHORT_WALL_CLOCK,
    expected: { logs: [], fills: 1 },
  },
  {
    name: 'unhandled rejection with a looping stack',
    // isolated-vm converts an unhandled rejection outside the call timeout, so the backstop
    // timer must end the getter.
    source: "Promise.reject(Object.defineProperty(new Error('x'), 'stack', { get() { for (;;) {} } }));\nfunction onBar(ctx) {}",
    options: SHORT_WALL_CLOCK,
    expected: timeLimitAt(),
  },
  {
    name: 'recursion in onBar',
    source: 'function dive(depth) { return dive(depth + 1) + 1; }\nfunction onBar(ctx) { if (ctx.bar.index === 5) dive(0); }',
    expected: { code: 'E_STRATEGY_RUNTIME', details: { file: FILENAME, phase: 'bar', line: 1, column: 24, bar: 5 } },
  },
  {
    name: 'recursion in init',
    source: 'function dive(depth) { return dive(depth + 1) + 1; }\nfunction init(ctx) { dive(0); }\nfunction onBar(ctx) {}',
    expected: { code: 'E_STRATEGY_RUNTIME', details: { file: FILENAME, phase: 'init', line: 1, column: 24 } },
  },
  {
    name: 'recursion while loading',
    source: 'function dive(depth) { return dive(depth + 1) + 1; }\ndive(0);\nfunction onBar(ctx) {}',
    expected: { code: 'E_STRATEGY_RUNTIME', details: { file: FILENAME, phase: 'load', line: 1, column: 24 } },
  },
  {
    name: 'unbounded array growth',
    source: 'const hoard = [];\nfunction onBar(ctx) { for (;;) hoard.push(1.5); }',
    options: SMALL_MEMORY,
    expected: MEMORY_LIMIT_AT_0,
  },
  {
    name: 'unbounded distinct strings',
    source: "const hoard = [];\nfunction onBar(ctx) { for (let i = 0; ; i++) hoard.push(String(i).padStart(65536, 'x')); }",
    options: SMALL_MEMORY,
    expected: MEMORY_LIMIT_AT_0,
  },
  {
    name: 'string doubling',
    source: "function onBar(ctx) { let text = 'x'; for (;;) text += text; }",
    options: SMALL_MEMORY,
    expected: { code: 'E_STRATEGY_RUNTIME', details: { file: FILENAME, phase: 'bar', line: 1, column: 56, bar: 0 } },
  },
  {
    name: 'unbounded ArrayBuffers',
    source: 'const hoard = [];\nfunction onBar(ctx) { for (;;) hoard.push(new ArrayBuffer(1 << 20)); }',
    options: SMALL_MEMORY,
    expected: MEMORY_LIMIT_AT_0,
  },
  {
    name: 'unbounded typed arrays',
    source: 'const hoard = [];\nfunction onBar(ctx) { for (;;) hoard.push(new Float64Array(1 << 17).fill(1)); }',
    options: SMALL_MEMORY,
    expected: MEMORY_LIMIT_AT_0,
  },
  {
    name: 'one ArrayBuffer above the limit',
    source: `
function onBar(ctx) {
  if (ctx.bar.index !== 0) return;
  try { new ArrayBuffer(2 ** 31); ctx.log('allocated'); } catch (error) { ctx.log(error.name); }
  try { new Float64Array(2 ** 28); ctx.log('allocated'); } catch (error) { ctx.log(error.name); }
}`,
    options: SMALL_MEMORY,
    expected: { logs: ['[bar 0] RangeError', '[bar 0] RangeError'] },
  },
  {
    name: 'huge log values are cut',
    source: `
const big = 'y'.repeat(2 ** 24);
function onBar(ctx) {
  if (ctx.bar.index !== 0) return;
  ctx.log(big);
  ctx.log({ toJSON() { return big; } });
  ctx.log(...new Array(100000).fill('ab'));
}`,
    options: { memoryLimitMb: 64 },
    expected: {
      logs: [
        `[bar 0] ${'y'.repeat(1989)}...`,
        `[bar 0] "${'y'.repeat(1988)}...`,
        `[bar 0]${' ab'.repeat(663)} ...`,
      ],
    },
  },
  {
    name: 'deep and circular log values',
    source: `
function onBar(ctx) {
  if (ctx.bar.index !== 0) return;
  let deep = {};
  for (let i = 0; i < 100000; i++) deep = { d: deep };
  const circular = {};
  circular.self = circular;
  ctx.log(deep);
  ctx.log(circular);
  ctx.log(Symbol('s'), 10n, undefined, null, [1, [2]], new Float64Array([1.5]));
}`,
    options: { memoryLimitMb: 64 },
    expected: {
      logs: ['[bar 0] [value that could not be printed]', '[bar 0] [value that could not be printed]', '[bar 0] Symbol(s) 10 undefined null [1,[2]] {"0":1.5}'],
    },
  },
];

/**
 * Allocations that isolated-vm 7.0.1 does not count against `memoryLimit`: WebAssembly memories
 * and resizable or growable buffers keep their pages outside the V8 heap. The runner removes
 * each of them, so every case stops at its first use, under an 8 MB limit that BLOCKS times
 * 16 MiB would exceed six times over.
 */
const uncountedAllocations: AbuseCase[] = [
  {
    name: 'WebAssembly memories',
    source: `const hoard = [];\nfunction onBar(ctx) { for (let i = 0; i < ${BLOCKS}; i++) { const memory = new WebAssembly.Memory({ initial: 256 }); new Uint8Array(memory.buffer).fill(1); hoard.push(memory); } }`,
    options: TINY_MEMORY,
    expected: { code: 'E_STRATEGY_RUNTIME', details: { file: FILENAME, phase: 'bar', line: 2, column: 68, bar: 0 } },
  },
  {
    name: 'growing WebAssembly memory',
    source: `function onBar(ctx) { const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536 }); for (let i = 0; i < ${BLOCKS}; i++) memory.grow(256); new Uint8Array(memory.buffer).fill(1); }`,
    options: TINY_MEMORY,
    expected: { code: 'E_STRATEGY_RUNTIME', details: { file: FILENAME, phase: 'bar', line: 1, column: 38, bar: 0 } },
  },
  {
    name: 'resizable ArrayBuffers',
    source: `const hoard = [];\nfunction onBar(ctx) { for (let i = 0; i < ${BLOCKS}; i++) { const buffer = new ArrayBuffer(1024, { maxByteLength: 1 << 24 }); buffer.resize(1 << 24); new Uint8Array(buffer).fill(1); hoard.push(buffer); } }`,
    options: TINY_MEMORY,
    expected: { code: 'E_STRATEGY_RUNTIME', details: { file: FILENAME, phase: 'bar', line: 2, column: 68, bar: 0 } },
  },
  {
    name: 'growable SharedArrayBuffers',
    source: `const hoard = [];\nfunction onBar(ctx) { for (let i = 0; i < ${BLOCKS}; i++) { const buffer = new SharedArrayBuffer(1024, { maxByteLength: 1 << 24 }); buffer.grow(1 << 24); new Uint8Array(buffer).fill(1); hoard.push(buffer); } }`,
    options: TINY_MEMORY,
    expected: { code: 'E_STRATEGY_RUNTIME', details: { file: FILENAME, phase: 'bar', line: 2, column: 68, bar: 0 } },
  },
  {
    name: 'resizable buffer through other paths',
    // Every path to an ArrayBuffer constructor leads to the one that rejects maxByteLength,
    // while fixed-length buffers and typed arrays work as before.
    source: `
function attempt(make) {
  try { const buffer = make(); return buffer.resizable + ':' + buffer.byteLength; } catch (error) { return error.name; }
}
class Growing extends ArrayBuffer {}
function onBar(ctx) {
  if (ctx.bar.index !== 0) return;
  const options = { maxByteLength: 1 << 24 };
  const buffer = new Uint8Array(8).buffer;
  ctx.log(
    attempt(() => new buffer.constructor(8, options)),
    attempt(() => new (Object.getPrototypeOf(buffer).constructor)(8, options)),
    attempt(() => Reflect.construct(ArrayBuffer, [8, options])),
    attempt(() => new Growing(8, options)),
    attempt(() => new ArrayBuffer(8, undefined)),
    attempt(() => buffer.slice(0, 4)),
    attempt(() => buffer.transfer(16)),
    attempt(() => ArrayBuffer(8)),
    typeof WebAssembly, typeof SharedArrayBuffer, buffer.constructor === ArrayBuffer,
    new Float64Array([1.5, 2.5]).reduce((a, b) => a + b), new DataView(new ArrayBuffer(8)).byteLength,
  );
}`,
    options: TINY_MEMORY,
    expected: { logs: ['[bar 0] TypeError TypeError TypeError TypeError false:8 false:4 false:16 TypeError undefined undefined true 4 8'] },
  },
];

describe('sandbox abuse: resources', () => {
  const sandbox = useAbuseSandbox();
  describeCases(sandbox, cases);

  describeCases(sandbox, uncountedAllocations);
});

/**
 * Cases that end the whole process or leave a worker spinning: they run in a child process
 * with its own pool, killed at a deadline, so they cannot take the test runner down.
 */
describe('sandbox abuse: process survival', () => {
  // Growing a Map, a Set or a dictionary-mode object until the memory limit sometimes makes V8
  // fail one large allocation, which isolated-vm 7.0.1 reports as "Catastrophic out-of-memory
  // error" (about half of such runs on a worker thread). The run that owns the isolate fails
  // with E_LIMIT_MEMORY and the pool keeps serving, so the child repeats the three kinds twice.
  test('unbounded tables stay a memory limit', async () => {
    const tables = [
      'const table = new Map();\nfunction onBar(ctx) { for (let i = 0; ; i++) table.set(i, i); }',
      'const table = new Set();\nfunction onBar(ctx) { for (let i = 0; ; i++) table.add(i); }',
      "const table = {};\nfunction onBar(ctx) { for (let i = 0; ; i++) table['k' + i] = i; }",
    ];
    const report = await runInChild([...tables, ...tables], SMALL_MEMORY, 60_000);
    expect(report.killed).toBe(false);
    expect(report.signal).toBeNull();
    expect(report.outcomes).toHaveLength(tables.length * 2 + 1);
    for (const outcome of report.outcomes.slice(0, -1)) {
      expect(outcome).toEqual({ ok: false, code: 'E_LIMIT_MEMORY', details: { limit: 'memoryLimitMb', value: 32, bar: 0, barExact: false } });
    }
    expect(report.outcomes.at(-1)).toMatchObject({ ok: true, fills: 1 });
    expect(report.lostIsolates).toBeGreaterThanOrEqual(0);
  });

  // isolated-vm reads an unhandled rejection's message, stack and name after the call's timeout;
  // disposing the isolate interrupts only the first read, so a proxy whose get trap loops keeps
  // the isolate's thread busy. The watchdog gives up on the isolate and fails the run.
  test.each([
    ['rejected proxy with a looping trap', "function onBar(ctx) { Promise.reject(new Proxy(new Error('x'), { get() { for (;;) {} } })); }"],
    ['rejected object with looping getters', 'function onBar(ctx) { Promise.reject({ get message() { for (;;) {} }, get stack() { for (;;) {} } }); }'],
  ])('%s ends', async (_name, source) => {
    const report = await runInChild([source], SHORT_WALL_CLOCK, 10_000);
    expect(report.killed).toBe(false);
    expect(report.outcomes).toHaveLength(2);
    expect(report.outcomes[0]).toEqual({ ok: false, code: 'E_LIMIT_TIME', details: { limit: 'timeoutMs', value: 300, bar: 39, barExact: false } });
    expect(report.outcomes[1]).toMatchObject({ ok: true, fills: 1 });
    expect(report.lostIsolates).toBe(1);
  });
});
