/** Hostile or broken input through the real kernel: the error names the problem, and stored data survives. */
import fs from 'node:fs';
import { auditServices, expectCode, prepareProfile, SP500_CSV, startKernel, type RunningKernel } from '../support/harness';

describe('bad input through the kernel', () => {
  let running: RunningKernel;

  beforeAll(async () => {
    running = await startKernel();
    await prepareProfile(running.client);
  });

  afterAll(async () => {
    await running?.stop();
  });

  test('CSV with a bad row imports nothing and names the line', async () => {
    const lines = fs.readFileSync(SP500_CSV, 'utf8').trim().split('\n');
    // Line 101 of the file (header is line 1): make high lower than low.
    const fields = lines[100].split(',');
    fields[2] = String(Number(fields[3]) - 1);
    lines[100] = fields.join(',');
    const details = await expectCode(running.client.call('storage.importBars', { symbol: 'SPX', csv: Buffer.from(lines.join('\n')) }), 'E_CSV_INVALID');
    expect(details.line).toBe(101);

    const symbols = await running.client.call<{ symbol: string; bars: number }[]>('storage.listSymbols', {});
    expect(symbols).toEqual([expect.objectContaining({ symbol: 'SPX', bars: 5105 })]);
  });

  test('endless loop ends with a time limit while other services keep working', async () => {
    const source = 'function onBar(ctx) { while (true) {} }';
    const details = await expectCode(running.client.call('backtest.run', { source, filename: 'spin.js', symbol: 'SPX', options: { timeoutMs: 1000, cpuTimeMs: 1000 } }), expect.stringMatching(/^E_LIMIT_(TIME|CPU)$/));
    expect(['timeoutMs', 'cpuTimeMs']).toContain(details.limit);
    await expect(running.client.call('auth.status', {})).resolves.toEqual(expect.objectContaining({ profileExists: true }));
  });

  test('unbounded allocation ends with the memory limit and the sandbox keeps serving', async () => {
    const source = 'const hoard = []; function onBar(ctx) { for (;;) hoard.push(new Array(100000).fill(ctx.bar.close)); }';
    await expectCode(running.client.call('backtest.run', { source, filename: 'hoard.js', symbol: 'SPX', options: { memoryLimitMb: 64 } }), 'E_LIMIT_MEMORY');
    const sandbox = (await auditServices(running.client)).find((service) => service.name === 'sandbox')!;
    expect(sandbox.state).toBe('running');
    const ok = await running.client.call<{ bars: number }>('backtest.run', { source: 'function onBar(ctx) {}', filename: 'idle.js', symbol: 'SPX' });
    expect(ok.bars).toBe(5105);
  });

  test('strategy that requires a module gets a compile error', async () => {
    const details = await expectCode(running.client.call('backtest.run', { source: "const fs = require('fs');\nfunction onBar(ctx) {}", filename: 'reach.js', symbol: 'SPX' }), 'E_STRATEGY_COMPILE');
    expect(details.file).toBe('reach.js');
  });
});
