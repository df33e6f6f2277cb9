/**
 * Every limit ends a run with its own error code, and the same single-thread pool serves the
 * next run afterwards.
 */
import { parse } from '../../protocol/schema';
import { createSandboxService, runParamsSchema } from '../../services/sandbox/service';
import type { BacktestOptions, BacktestResult } from '../../services/sandbox/types';
import { createSandboxContext, rejection, syntheticBars } from './fixtures';

const HEALTHY = 'function onBar(ctx) { if (ctx.bar.index === 0) ctx.buy(1); }';

describe('sandbox limits', () => {
  const bars = syntheticBars(300);
  const { ctx, events } = createSandboxContext();
  // One thread, so every run after a limit lands on the thread whose isolate was just disposed.
  const service = createSandboxService({ threads: 1 });

  const run = (source: string, options: BacktestOptions = {}): Promise<BacktestResult> =>
    service.methods.run.handle(parse(runParamsSchema, { source, filename: 'limits.js', bars, params: {}, options }, 'params'), ctx) as Promise<BacktestResult>;

  async function expectHealthyRun(): Promise<void> {
    const result = await run(HEALTHY);
    expect(result.fills).toHaveLength(1);
  }

  beforeAll(async () => {
    await service.start!(ctx);
  });

  afterAll(async () => {
    await service.stop!(ctx);
  });

  test('endless loop hits the time or CPU limit', async () => {
    const error = await rejection(run('function onBar(ctx) { if (ctx.bar.index === 7) for (;;) {} }', { timeoutMs: 1_000, cpuTimeMs: 600 }));
    expect(['E_LIMIT_CPU', 'E_LIMIT_TIME']).toContain(error.code);
    expect(['cpuTimeMs', 'timeoutMs']).toContain(error.details.limit);
    await expectHealthyRun();
  });

  test('wall-clock timeout reports the bar reached', async () => {
    const error = await rejection(run('function onBar(ctx) { if (ctx.bar.index === 7) for (;;) {} }', { timeoutMs: 300, cpuTimeMs: 10_000 }));
    expect(error.code).toBe('E_LIMIT_TIME');
    expect(error.details.value).toBe(300);
    expect(error.details.bar).toBe(7);
    await expectHealthyRun();
  });

  test('endless microtask loop hits the time or CPU limit', async () => {
    const source = 'function spin() { Promise.resolve().then(spin); }\nfunction onBar(ctx) { if (ctx.bar.index === 0) spin(); }';
    const error = await rejection(run(source, { timeoutMs: 500, cpuTimeMs: 400 }));
    expect(['E_LIMIT_CPU', 'E_LIMIT_TIME']).toContain(error.code);
    await expectHealthyRun();
  });

  test('closing the wrapper early is a compile error', async () => {
    // Closing the wrapper's try block would let the throw reach isolated-vm's own error
    // conversion, which runs outside the call timeout. The standalone compile rejects it first.
    const source = 'function onBar() {}\n} catch (e) {}\nthrow { get message() { for (;;) {} } };\ntry {';
    const error = await rejection(run(source, { timeoutMs: 300, cpuTimeMs: 10_000 }));
    expect(error.code).toBe('E_STRATEGY_COMPILE');
    expect(error.details).toEqual({ file: 'limits.js', line: 2, column: 1 });
    await expectHealthyRun();
  });

  test('unbounded allocation hits the memory limit', async () => {
    const source = "const hoard = [];\nfunction onBar(ctx) { for (;;) hoard.push({ bar: ctx.bar.index, text: 'x'.repeat(64) + hoard.length }); }";
    const error = await rejection(run(source, { memoryLimitMb: 32, timeoutMs: 30_000, cpuTimeMs: 30_000 }));
    expect(error.code).toBe('E_LIMIT_MEMORY');
    expect(error.details).toEqual({ limit: 'memoryLimitMb', value: 32, bar: 0, barExact: false });
    await expectHealthyRun();
  });

  test('CPU limit names the bar reached', async () => {
    const error = await rejection(run('function onBar(ctx) { if (ctx.bar.index === 7) for (;;) {} }', { timeoutMs: 20_000, cpuTimeMs: 300 }));
    expect(error.code).toBe('E_LIMIT_CPU');
    // The isolate is disposed, so the bar is the last one the runner reported: 7 or an earlier one.
    expect(error.details.barExact).toBe(false);
    expect(error.details.bar).toBeGreaterThanOrEqual(0);
    expect(error.details.bar).toBeLessThanOrEqual(7);
    expect(error.message).toContain('or later');
    await expectHealthyRun();
  });

  test('memory limit names the bar reached', async () => {
    const source = 'const hoard = [];\nfunction onBar(ctx) { if (ctx.bar.index === 40) for (;;) hoard.push([ctx.bar.index, hoard.length]); }';
    const error = await rejection(run(source, { memoryLimitMb: 32 }));
    expect(error.code).toBe('E_LIMIT_MEMORY');
    expect(error.details.barExact).toBe(false);
    expect(error.details.bar).toBeGreaterThanOrEqual(0);
    expect(error.details.bar).toBeLessThanOrEqual(40);
    await expectHealthyRun();
  });

  test('CPU limit in init names no bar', async () => {
    const error = await rejection(run('function init() { for (;;) {} }\nfunction onBar() {}', { timeoutMs: 20_000, cpuTimeMs: 200 }));
    expect(error.code).toBe('E_LIMIT_CPU');
    expect(error.details).toEqual({ limit: 'cpuTimeMs', value: 200 });
    await expectHealthyRun();
  });

  test('order cap ends the run at the bar that exceeds it', async () => {
    const error = await rejection(run('function onBar(ctx) { ctx.buy(1); }', { maxOrders: 10 }));
    expect(error.code).toBe('E_LIMIT_ORDERS');
    expect(error.details).toEqual({ limit: 'maxOrders', value: 10, bar: 10 });
    await expectHealthyRun();
  });

  test('order cap holds when the strategy catches the error', async () => {
    const source = 'function onBar(ctx) { for (let i = 0; i < 5; i++) { try { ctx.buy(1); } catch (e) { ctx.log("caught"); } } }';
    const error = await rejection(run(source, { maxOrders: 12 }));
    expect(error.code).toBe('E_LIMIT_ORDERS');
    expect(error.details.bar).toBe(2);
  });

  test('log line cap ends the run', async () => {
    const error = await rejection(run('function onBar(ctx) { ctx.log("bar", ctx.bar.index); }', { maxLogLines: 5 }));
    expect(error.code).toBe('E_LIMIT_LOGS');
    expect(error.details).toEqual({ limit: 'maxLogLines', value: 5, bar: 5 });
    await expectHealthyRun();
  });

  test('limits are reported as security events', () => {
    const codes = events.map((event) => event.details.code);
    expect(codes).toContain('E_LIMIT_MEMORY');
    expect(codes).toContain('E_LIMIT_ORDERS');
    expect(codes).toContain('E_LIMIT_LOGS');
    for (const event of events) expect(event.type).toBe('sandbox.limit_reached');
  });
});
