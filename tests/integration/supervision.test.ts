/** Crashes of real service processes: named reasons, restarts, and runs in flight failing clearly. */
import fs from 'node:fs';
import { auditServices, expectCode, prepareProfile, SMA_STRATEGY, startKernel, waitFor, type RunningKernel } from '../support/harness';

const ENDLESS = 'function onBar(ctx) { if (ctx.bar.index === 100) { for (;;) {} } }';

describe('supervision', () => {
  let running: RunningKernel;

  beforeAll(async () => {
    running = await startKernel({ heartbeatIntervalMs: 200, heartbeatTimeoutMs: 1500 });
    await prepareProfile(running.client);
  });

  afterAll(async () => {
    await running?.stop();
  });

  async function sandbox() {
    return (await auditServices(running.client)).find((service) => service.name === 'sandbox')!;
  }

  test('killing the sandbox during a run fails the run and restarts the sandbox', async () => {
    const before = await sandbox();
    const run = running.client.call('backtest.run', { source: ENDLESS, filename: 'endless.js', symbol: 'SPX', options: { timeoutMs: 60_000, cpuTimeMs: 60_000 } });
    await new Promise((resolve) => setTimeout(resolve, 500));
    process.kill(before.pid!, 'SIGKILL');

    const details = await expectCode(run, 'E_RUN_ABORTED');
    expect(details.service).toBe('sandbox');
    expect(details.reason).toBe('signal');

    await waitFor(async () => (await sandbox()).state === 'running', 10_000, 'sandbox restart');
    const after = await sandbox();
    expect(after.pid).not.toBe(before.pid);
    expect(after.restarts).toBe(before.restarts + 1);
    expect(after.lastExit).toEqual({ reason: 'signal', detail: 'SIGKILL', at: expect.any(Number) });

    const result = await running.client.call<{ metrics: { fills: number } }>('backtest.run', { source: fs.readFileSync(SMA_STRATEGY, 'utf8'), filename: 'sma-crossover.ts', symbol: 'SPX', params: { fast: 50, slow: 200 } });
    expect(result.metrics.fills).toBeGreaterThan(0);
  });

  test('a frozen service is detected by lost heartbeats and restarted', async () => {
    const auth = (await auditServices(running.client)).find((service) => service.name === 'auth')!;
    process.kill(auth.pid!, 'SIGSTOP');
    await waitFor(async () => {
      const current = (await auditServices(running.client)).find((service) => service.name === 'auth')!;
      return current.state === 'running' && current.pid !== auth.pid;
    }, 15_000, 'auth restart after lost heartbeat');
    const restarted = (await auditServices(running.client)).find((service) => service.name === 'auth')!;
    expect(restarted.lastExit?.reason).toBe('heartbeat-lost');
    await expect(running.client.call('auth.status', {})).resolves.toEqual(expect.objectContaining({ profileExists: true }));
  });
});
