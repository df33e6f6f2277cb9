/**
 * A strategy that makes the sandbox lose its isolate, through the real kernel and services. A
 * rejected proxy whose `get` trap loops keeps the isolate's thread busy after the run's timeout,
 * and disposing the isolate does not stop it (isolated-vm 7.0.1). The run fails with its time
 * limit, the sandbox announces its restart and ends itself, and the kernel restarts it without
 * counting a crash, so repeating the attack does not stretch the restart backoff.
 */
import fs from 'node:fs';
import { auditServices, expectCode, prepareProfile, SMA_STRATEGY, startKernel, waitFor, type AuditService, type RunningKernel } from '../support/harness';

const LOSES_ISOLATE = "function onBar(ctx) { Promise.reject(new Proxy(new Error('x'), { get() { for (;;) {} } })); }";

describe('lost strategy isolate', () => {
  let running: RunningKernel;

  beforeAll(async () => {
    running = await startKernel();
    await prepareProfile(running.client);
  });

  afterAll(async () => {
    await running?.stop();
  });

  async function sandbox(): Promise<AuditService> {
    return (await auditServices(running.client)).find((service) => service.name === 'sandbox')!;
  }

  async function restartedFrom(before: AuditService): Promise<AuditService> {
    await waitFor(async () => {
      const current = await sandbox();
      return current.state === 'running' && current.pid !== before.pid;
    }, 20_000, 'sandbox restart');
    return sandbox();
  }

  async function eventCount(type: string): Promise<number> {
    const counts = await running.client.call<Record<string, number>>('monitor.counts', {});
    return counts[type] ?? 0;
  }

  test('restart is not counted as a crash', async () => {
    for (let round = 1; round <= 3; round++) {
      const before = await sandbox();
      const details = await expectCode(
        running.client.call('backtest.run', { source: LOSES_ISOLATE, filename: 'lost.js', symbol: 'SPX', options: { timeoutMs: 300 } }),
        'E_LIMIT_TIME',
      );
      expect(details.barExact).toBe(false);

      const after = await restartedFrom(before);
      expect(after.restarts).toBe(before.restarts + 1);
      expect(after.lastExit).toEqual({ reason: 'signal', detail: 'SIGABRT', at: expect.any(Number) });
      expect(after.consecutiveCrashes).toBe(0);
    }
    expect(await eventCount('sandbox.isolate_lost')).toBe(3);
  });

  test('real crash still counts, and runs work', async () => {
    const before = await sandbox();
    process.kill(before.pid!, 'SIGKILL');
    const after = await restartedFrom(before);
    expect(after.lastExit).toEqual({ reason: 'signal', detail: 'SIGKILL', at: expect.any(Number) });
    expect(after.consecutiveCrashes).toBe(1);

    const result = await running.client.call<{ metrics: { fills: number } }>('backtest.run', {
      source: fs.readFileSync(SMA_STRATEGY, 'utf8'),
      filename: 'sma-crossover.ts',
      symbol: 'SPX',
      params: { fast: 50, slow: 200 },
    });
    expect(result.metrics.fills).toBeGreaterThan(0);
  });
});
