/**
 * Who can use the control socket while other peers are attached to it. The control socket is a
 * nanomsg reply socket that serves every connected client, and each verified client gets its own
 * private pair socket, so neither a connected client nor a silent keyless peer blocks others.
 */
import { KernelClient } from '../../kernel/client';
import { CONTROL_ENDPOINT_NAME } from '../../kernel/control-server';
import { endpointIn } from '../../kernel/runtime-dir';
import { NanomsgTransport } from '../../protocol/transport';
import { auditServices, expectCode, startKernel, TEST_PASSWORD, type RunningKernel } from '../support/harness';

/** Time for nanomsg to finish connecting a new peer before the test relies on it. */
const CONNECT_SETTLE_MS = 200;

const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, CONNECT_SETTLE_MS));

describe('control socket peers', () => {
  let running: RunningKernel;

  beforeAll(async () => {
    running = await startKernel();
  });

  afterAll(async () => {
    await running?.stop();
  });

  test('second client while first attached', async () => {
    const second = await KernelClient.connect(running.kernel.runtimeDir, running.kernel.embeddedClientKey);
    try {
      const services = await auditServices(second);
      expect(services).toHaveLength(5);
    } finally {
      second.close();
    }
  });

  test('keyless silent peer blocks nobody', async () => {
    running.client.close();
    const silent = new NanomsgTransport(endpointIn(running.kernel.runtimeDir, CONTROL_ENDPOINT_NAME), 'connect', 'req');
    await settle();
    try {
      const client = await KernelClient.connect(running.kernel.runtimeDir, running.kernel.embeddedClientKey);
      client.close();
    } finally {
      silent.close();
    }
  });

  test('serves again after silent peer leaves', async () => {
    const silent = new NanomsgTransport(endpointIn(running.kernel.runtimeDir, CONTROL_ENDPOINT_NAME), 'connect', 'req');
    await settle();
    silent.close();
    await settle();

    const client = await KernelClient.connect(running.kernel.runtimeDir, running.kernel.embeddedClientKey);
    try {
      const services = await auditServices(client);
      expect(services.every((service) => service.state === 'running')).toBe(true);
    } finally {
      client.close();
    }
  });
});

describe('control socket sessions', () => {
  test('closed clients leave no session behind', async () => {
    const running = await startKernel();
    try {
      const extra = await Promise.all([1, 2, 3].map(() => KernelClient.connect(running.kernel.runtimeDir)));
      const during = await running.client.call<{ kernel: { clients: unknown[] } }>('kernel.audit', {});
      expect(during.kernel.clients).toHaveLength(4);

      for (const client of extra) client.close();
      await new Promise((resolve) => setTimeout(resolve, 300));
      const after = await running.client.call<{ kernel: { clients: unknown[] } }>('kernel.audit', {});
      expect(after.kernel.clients).toHaveLength(1);
    } finally {
      await running.stop();
    }
  });

  test('each client session has its own phase', async () => {
    const running = await startKernel();
    const second = await KernelClient.connect(running.kernel.runtimeDir);
    try {
      await running.client.call('auth.createProfile', { password: TEST_PASSWORD });
      await running.client.call('auth.unlock', { password: TEST_PASSWORD });
      await expect(running.client.call('storage.listSymbols', {})).resolves.toEqual([]);
      await expectCode(second.call('storage.listSymbols', {}), 'E_POLICY_DENIED');
    } finally {
      second.close();
      await running.stop();
    }
  });
});
