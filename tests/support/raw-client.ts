/**
 * A control-socket client built from the protocol parts, for tests that must send frames the
 * real client never would: replayed, reordered, truncated, bit-flipped or oversized envelopes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { EnvelopeCodec } from '../../protocol/envelope';
import { createHello, deriveSessionSecret, verifyWelcome, type Welcome } from '../../protocol/handshake';
import { deriveDirectionKeys } from '../../protocol/keys';
import { MessageKind, PeerId } from '../../protocol/layout';
import { NanomsgTransport } from '../../protocol/transport';

export class RawClient {
  readonly received: Uint8Array[] = [];

  private constructor(readonly transport: NanomsgTransport, readonly codec: EnvelopeCodec) {
    transport.on('frame', (frame) => this.received.push(frame));
  }

  static async connect(runtimeDir: string): Promise<RawClient> {
    const key = new Uint8Array(fs.readFileSync(path.join(runtimeDir, 'control.key')));
    const rendezvous = new NanomsgTransport(`ipc://${path.join(runtimeDir, 'control.ipc')}`, 'connect', 'req');
    const hello = createHello(key);
    const welcome = await new Promise<Welcome>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no WELCOME from the kernel')), 5000);
      rendezvous.on('frame', (frame) => {
        const verified = verifyWelcome(key, hello.clientNonce, frame);
        if (verified) {
          clearTimeout(timer);
          resolve(verified);
        }
      });
      rendezvous.send(hello.frame);
    });
    rendezvous.close();
    const transport = new NanomsgTransport(`ipc://${path.join(runtimeDir, `${welcome.endpointName}.ipc`)}`, 'connect');
    const keys = deriveDirectionKeys(deriveSessionSecret(key, hello.clientNonce, welcome.kernelNonce), PeerId.client, PeerId.kernel);
    return new RawClient(transport, new EnvelopeCodec(keys, PeerId.client, PeerId.kernel));
  }

  request(id: number, method: string, params: unknown): Uint8Array {
    return this.codec.seal(MessageKind.Request, { id, method, params });
  }

  /** Waits for the next frame from the kernel and opens it. */
  async next(timeoutMs = 5000): Promise<{ kind: number; body: unknown }> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length === 0) {
      if (Date.now() > deadline) throw new Error('no frame from the kernel');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const opened = this.codec.open(this.received.shift()!);
    return { kind: opened.kind, body: opened.body };
  }

  close(): void {
    this.transport.close();
  }
}
