/** The kernel starts five real service processes, routes by policy, and leaves no process behind. */
import { SERVICE_NAMES } from '../../services/runtime/types';
import { auditServices, expectCode, isProcessAlive, startKernel, TEST_PASSWORD, type RunningKernel } from '../support/harness';

describe('kernel lifecycle', () => {
  let running: RunningKernel;

  beforeAll(async () => {
    running = await startKernel();
  });

  afterAll(async () => {
    await running?.stop();
  });

  test('starts every service in its own process', async () => {
    const services = await auditServices(running.client);
    expect(services.map((service) => service.name).sort()).toEqual([...SERVICE_NAMES].sort());
    const pids = services.map((service) => service.pid);
    for (const service of services) {
      expect(service.state).toBe('running');
      expect(service.pid).not.toBe(process.pid);
    }
    expect(new Set(pids).size).toBe(SERVICE_NAMES.length);
  });

  test('denies unlocked-only methods while locked', async () => {
    const details = await expectCode(running.client.call('storage.listSymbols', {}), 'E_POLICY_DENIED');
    expect(details.phase).toBe('locked');
  });

  test('denies methods no client may call in any phase', async () => {
    await expectCode(running.client.call('sandbox.run', {}), 'E_POLICY_DENIED');
    await expectCode(running.client.call('monitor.record', { source: 'x', type: 'fake', severity: 'info', details: {} }), 'E_POLICY_DENIED');
    await expectCode(running.client.call('storage.saveBacktest', {}), 'E_POLICY_DENIED');
  });

  test('unlock opens the unlocked phase for this connection', async () => {
    await running.client.call('auth.createProfile', { password: TEST_PASSWORD });
    await running.client.call('auth.unlock', { password: TEST_PASSWORD });
    await expect(running.client.call('storage.listSymbols', {})).resolves.toEqual([]);
    await expectCode(running.client.call('auth.unlock', { password: TEST_PASSWORD }), 'E_POLICY_DENIED');
  });

  test('invalid parameters are rejected by the service schema', async () => {
    const details = await expectCode(running.client.call('storage.queryBars', { symbol: 'SPX', extra: 1 }), 'E_INVALID_PARAMS');
    expect(details.path).toBe('params.extra');
  });

  test('stop leaves no service process running', async () => {
    const pids = (await auditServices(running.client)).map((service) => service.pid as number);
    await running.stop();
    for (const pid of pids) expect(isProcessAlive(pid)).toBe(false);
  });
});
