/**
 * Forged envelopes sent to a real kernel over its control socket. Each one must be rejected with
 * one generic Reject, close the session, be counted, and leave the kernel serving new clients.
 */
import { KernelClient } from '../../kernel/client';
import { HEADER_SIZE, MAX_FRAME_BYTES, MessageKind } from '../../protocol/layout';
import { startKernel, waitFor, type RunningKernel } from '../support/harness';
import { RawClient } from '../support/raw-client';

type Attack = (client: RawClient) => Uint8Array[];

/** Name and the frames to send; the kernel must reject exactly one of them and close the session. */
const ATTACKS: [string, Attack][] = [
  ['replayed', (client) => {
    const frame = client.request(1, 'auth.status', {});
    return [frame, frame];
  }],
  ['reordered', (client) => {
    const first = client.request(1, 'auth.status', {});
    const second = client.request(2, 'auth.status', {});
    return [second, first];
  }],
  ['truncated', (client) => [client.request(1, 'auth.status', {}).subarray(0, HEADER_SIZE + 5)]],
  ['bit-flipped', (client) => {
    const frame = client.request(1, 'auth.status', {}).slice();
    frame[frame.length - 3] ^= 0x20;
    return [frame];
  }],
  ['oversized', () => [new Uint8Array(MAX_FRAME_BYTES + 16)]],
];

describe('envelope attacks on the control socket', () => {
  let running: RunningKernel;

  beforeAll(async () => {
    running = await startKernel();
    running.client.close();
  });

  afterAll(async () => {
    await running?.stop();
  });

  async function rejectedFrames(): Promise<{ kernel: number; monitored: number }> {
    const client = await KernelClient.connect(running.kernel.runtimeDir);
    try {
      const audit = await client.call<{ kernel: { rejectedControlFrames: number } }>('kernel.audit', {});
      const counts = await client.call<Record<string, number>>('monitor.counts', {});
      return { kernel: audit.kernel.rejectedControlFrames, monitored: counts['envelope.rejected'] ?? 0 };
    } finally {
      client.close();
    }
  }

  test.each(ATTACKS)('%s envelope is rejected, counted and closes the session', async (_name, attack) => {
    const before = await rejectedFrames();
    const client = await RawClient.connect(running.kernel.runtimeDir);
    try {
      const frames = attack(client);
      let answered = 0;
      for (const frame of frames) client.transport.send(frame);

      // A valid first frame (replay case) is answered before the bad one is rejected.
      let reply = await client.next();
      while (reply.kind === MessageKind.Response) {
        answered++;
        reply = await client.next();
      }
      expect(reply.kind).toBe(MessageKind.Reject);
      expect(reply.body).toEqual({ code: 'E_ENVELOPE_REJECTED' });
      expect(answered).toBeLessThanOrEqual(1);

      // The session is closed: a correctly sealed envelope on it gets no answer.
      client.transport.send(client.request(99, 'auth.status', {}));
      await expect(client.next(500)).rejects.toThrow('no frame from the kernel');
    } finally {
      client.close();
    }

    await waitFor(async () => (await rejectedFrames()).monitored > before.monitored, 5000, 'the monitor to count the rejection');
    const after = await rejectedFrames();
    // The session's socket is gone after the rejection, so frames sent after it reach nobody.
    expect(after.kernel).toBe(before.kernel + 1);
  });

  test('__proto__ in a request body pollutes nothing in the kernel process', async () => {
    const client = await KernelClient.connect(running.kernel.runtimeDir);
    try {
      const params = JSON.parse('{"__proto__": {"polluted": "yes"}, "symbol": "SPX"}');
      // The kernel's decoder refuses the key, so the envelope itself is rejected and the session closed.
      await expect(client.call('storage.queryBars', params)).rejects.toEqual(expect.objectContaining({ code: 'E_CHANNEL_CLOSED' }));
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    } finally {
      client.close();
    }
  });

  test('a HELLO with a wrong key is refused and counted', async () => {
    const before = await rejectedFrames();
    const forged = await KernelClient.connect(running.kernel.runtimeDir, new Uint8Array(32).fill(7)).then(
      () => 'connected',
      (error: { code: string }) => error.code,
    );
    expect(forged).toBe('E_SERVICE_UNAVAILABLE');
    const after = await rejectedFrames();
    expect(after.kernel).toBe(before.kernel + 1);
  });
});
