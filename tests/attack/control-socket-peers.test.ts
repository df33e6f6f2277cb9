/**
 * Who can use the control socket while another peer is attached to it. The control socket is a
 * nanomsg pair socket, which talks to one connected peer at a time, so a second client's HELLO
 * is not delivered while the first peer stays connected.
 */
import { KernelClient } from '../../kernel/client';
import { CONTROL_ENDPOINT_NAME } from '../../kernel/control-server';
import { endpointIn } from '../../kernel/runtime-dir';
import { PairTransport } from '../../protocol/transport';
import { auditServices, startKernel, type RunningKernel } from '../support/harness';

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

  // BUG: one connected client blocks every other one. `backtestr audit ps` from a second
  // terminal fails with E_SERVICE_UNAVAILABLE while `backtestr run` is attached to `serve`.
  test.failing('second client while first attached', async () => {
    const second = await KernelClient.connect(running.kernel.runtimeDir, running.kernel.embeddedClientKey);
    try {
      const services = await auditServices(second);
      expect(services).toHaveLength(5);
    } finally {
      second.close();
    }
  });

  // BUG: a peer that connects without the control key and sends nothing blocks every client,
  // and the kernel neither counts nor reports it.
  test.failing('keyless silent peer blocks nobody', async () => {
    running.client.close();
    const silent = new PairTransport(endpointIn(running.kernel.runtimeDir, CONTROL_ENDPOINT_NAME), 'connect');
    await settle();
    try {
      const client = await KernelClient.connect(running.kernel.runtimeDir, running.kernel.embeddedClientKey);
      client.close();
    } finally {
      silent.close();
    }
  });

  test('serves again after silent peer leaves', async () => {
    const silent = new PairTransport(endpointIn(running.kernel.runtimeDir, CONTROL_ENDPOINT_NAME), 'connect');
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
