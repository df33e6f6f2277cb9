/**
 * The client side of the kernel's external interface, used by the CLI, tests and a desktop
 * shell. It reads the control key from the kernel's runtime directory (or takes it in memory for
 * an embedded kernel), performs the handshake and then sends envelopes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Channel } from '../protocol/channel';
import { EnvelopeCodec } from '../protocol/envelope';
import { BacktestrError } from '../protocol/errors';
import { createHello, deriveSessionSecret, verifyWelcome } from '../protocol/handshake';
import { CHANNEL_SECRET_SIZE, deriveDirectionKeys, wipe } from '../protocol/keys';
import { PeerId } from '../protocol/layout';
import { PairTransport } from '../protocol/transport';
import { CONTROL_ENDPOINT_NAME, CONTROL_KEY_FILE } from './control-server';
import { endpointIn } from './runtime-dir';

const HANDSHAKE_TIMEOUT_MS = 5000;
/** Default time a client waits for one call; a backtest may run for minutes. */
export const DEFAULT_CALL_TIMEOUT_MS = 20 * 60_000;

export class KernelClient {
  private constructor(private readonly channel: Channel) {}

  /** Connects to the kernel whose runtime directory is `runtimeDir`. */
  static async connect(runtimeDir: string, controlKey?: Uint8Array): Promise<KernelClient> {
    const key = controlKey ?? readControlKey(runtimeDir);
    const transport = new PairTransport(endpointIn(runtimeDir, CONTROL_ENDPOINT_NAME), 'connect');
    try {
      const hello = createHello(key);
      const kernelNonce = await new Promise<Uint8Array>((resolve, reject) => {
        const timer = setTimeout(() => {
          transport.off('frame', onFrame);
          reject(new BacktestrError('E_SERVICE_UNAVAILABLE', `no kernel responded in ${runtimeDir} within ${HANDSHAKE_TIMEOUT_MS} ms; start one with 'backtestr serve' or check --profile`));
        }, HANDSHAKE_TIMEOUT_MS);
        const onFrame = (frame: Uint8Array) => {
          const nonce = verifyWelcome(key, hello.clientNonce, frame);
          // Anything else on the socket before our WELCOME is ignored; the timeout bounds the wait.
          if (!nonce) return;
          clearTimeout(timer);
          transport.off('frame', onFrame);
          resolve(nonce);
        };
        transport.on('frame', onFrame);
        transport.send(hello.frame);
      });
      const secret = deriveSessionSecret(key, hello.clientNonce, kernelNonce);
      const keys = deriveDirectionKeys(secret, PeerId.client, PeerId.kernel);
      wipe(secret);
      return new KernelClient(new Channel(transport, new EnvelopeCodec(keys, PeerId.client, PeerId.kernel), 'kernel'));
    } catch (error) {
      transport.close();
      throw error;
    } finally {
      wipe(key);
    }
  }

  call<T = unknown>(method: string, params: unknown = {}, timeoutMs = DEFAULT_CALL_TIMEOUT_MS): Promise<T> {
    return this.channel.request(method, params, timeoutMs) as Promise<T>;
  }

  close(): void {
    this.channel.close('client closed');
  }
}

function readControlKey(runtimeDir: string): Uint8Array {
  const keyPath = path.join(runtimeDir, CONTROL_KEY_FILE);
  let key: Buffer;
  try {
    key = fs.readFileSync(keyPath);
  } catch (error) {
    throw new BacktestrError('E_SERVICE_UNAVAILABLE', `no running kernel for this profile (cannot read ${keyPath}); start one with 'backtestr serve'`, {}, { cause: error });
  }
  if (key.length !== CHANNEL_SECRET_SIZE) throw new BacktestrError('E_SERVICE_UNAVAILABLE', `control key ${keyPath} has ${key.length} bytes, expected ${CHANNEL_SECRET_SIZE}`);
  return new Uint8Array(key);
}
