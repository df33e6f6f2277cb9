/**
 * The client side of the kernel's external interface, used by the CLI, tests and a desktop
 * shell. It reads the control key from the kernel's runtime directory (or takes it in memory for
 * an embedded kernel), performs the handshake and then sends envelopes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Channel } from '../protocol/channel';
import { EnvelopeCodec } from '../protocol/envelope';
import { BacktestrError, toBacktestrError } from '../protocol/errors';
import { createHello, deriveSessionSecret, verifyWelcome, type Welcome } from '../protocol/handshake';
import { CHANNEL_SECRET_SIZE, deriveDirectionKeys, wipe } from '../protocol/keys';
import { PeerId } from '../protocol/layout';
import { NanomsgTransport } from '../protocol/transport';
import { CONTROL_ENDPOINT_NAME, CONTROL_KEY_FILE } from './control-server';
import { isLiveProcess } from './process-state';
import { endpointIn, KERNEL_PID_FILE } from './runtime-dir';

const HANDSHAKE_TIMEOUT_MS = 5000;
const CLOSE_TIMEOUT_MS = 2000;
/** Default time a client waits for one call; a backtest may run for minutes. */
export const DEFAULT_CALL_TIMEOUT_MS = 20 * 60_000;
/** How often a client checks that the kernel process still exists. */
const KERNEL_WATCH_INTERVAL_MS = 500;

export class KernelClient {
  private readonly watch: NodeJS.Timeout | undefined;

  private constructor(private readonly channel: Channel, kernelPid: number | undefined) {
    // A nanomsg pair socket reports nothing when its peer dies, so without this check a call to a
    // killed kernel would wait for its whole timeout (20 minutes for a backtest).
    if (kernelPid !== undefined) {
      this.watch = setInterval(() => {
        if (!isLiveProcess(kernelPid)) this.channel.close(`the kernel (pid ${kernelPid}) exited`);
      }, KERNEL_WATCH_INTERVAL_MS);
      this.watch.unref();
      channel.on('closed', () => clearInterval(this.watch));
    }
  }

  /**
   * Connects to the kernel whose runtime directory is `runtimeDir`. Calls in flight fail with
   * E_CHANNEL_CLOSED soon after the kernel process exits (its pid is read from the runtime
   * directory; an embedded kernel, given by `controlKey`, lives in this process).
   */
  static async connect(runtimeDir: string, controlKey?: Uint8Array): Promise<KernelClient> {
    const kernelPid = controlKey === undefined ? readKernelPid(runtimeDir) : undefined;
    if (controlKey === undefined && kernelPid !== undefined) await waitForControlKey(runtimeDir, kernelPid);
    const key = controlKey ?? readControlKey(runtimeDir);
    try {
      const hello = createHello(key);
      const welcome = await requestWelcome(runtimeDir, key, hello);
      const secret = deriveSessionSecret(key, hello.clientNonce, welcome.kernelNonce);
      const keys = deriveDirectionKeys(secret, PeerId.client, PeerId.kernel);
      wipe(secret);
      const transport = new NanomsgTransport(endpointIn(runtimeDir, welcome.endpointName), 'connect');
      return new KernelClient(new Channel(transport, new EnvelopeCodec(keys, PeerId.client, PeerId.kernel), 'kernel'), kernelPid);
    } finally {
      wipe(key);
    }
  }

  call<T = unknown>(method: string, params: unknown = {}, timeoutMs = DEFAULT_CALL_TIMEOUT_MS): Promise<T> {
    return this.channel.request(method, params, timeoutMs) as Promise<T>;
  }

  /**
   * Asks the kernel to end this session, then closes the channel. A kernel that does not reply
   * within CLOSE_TIMEOUT_MS ends the session itself once it has been idle for 10 minutes.
   */
  async close(): Promise<void> {
    if (this.channel.isClosed) return;
    try {
      await this.channel.request('kernel.closeSession', {}, CLOSE_TIMEOUT_MS);
    } catch (error) {
      // The kernel may be gone or stopping; the session ends with it either way.
      this.closeError = toBacktestrError(error);
    } finally {
      this.channel.close('client closed');
    }
  }

  /** The error of the last close request, kept for diagnostics; closing never throws. */
  closeError: BacktestrError | undefined;
}

/** Sends HELLO on the control socket and waits for the WELCOME that replies to it. */
async function requestWelcome(runtimeDir: string, key: Uint8Array, hello: { frame: Uint8Array; clientNonce: Uint8Array }): Promise<Welcome> {
  const rendezvous = new NanomsgTransport(endpointIn(runtimeDir, CONTROL_ENDPOINT_NAME), 'connect', 'req');
  try {
    return await new Promise<Welcome>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new BacktestrError('E_SERVICE_UNAVAILABLE', `no kernel responded in ${runtimeDir} within ${HANDSHAKE_TIMEOUT_MS} ms; start one with 'backtestr serve' or check --profile`));
      }, HANDSHAKE_TIMEOUT_MS);
      rendezvous.on('frame', (frame) => {
        const welcome = verifyWelcome(key, hello.clientNonce, frame);
        // A reply that does not verify is ignored; the timeout bounds the wait.
        if (!welcome) return;
        clearTimeout(timer);
        resolve(welcome);
      });
      rendezvous.send(hello.frame);
    });
  } finally {
    rendezvous.close();
  }
}

/** Returns the pid in the kernel's pid file, or undefined when there is no readable pid file. */
function readKernelPid(runtimeDir: string): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(runtimeDir, KERNEL_PID_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const pid = Number(text);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}


/** Time a client waits for a starting kernel (pid file written, services starting) to open its control socket. */
const KERNEL_STARTING_WAIT_MS = 20_000;

/**
 * Waits while the kernel `pid` is alive but has not written its control key yet. A kernel claims
 * the profile first and opens the control socket only after every service started, so a second
 * command started at the same moment as the first finds the kernel in this state.
 */
async function waitForControlKey(runtimeDir: string, pid: number): Promise<void> {
  const keyPath = path.join(runtimeDir, CONTROL_KEY_FILE);
  const deadline = Date.now() + KERNEL_STARTING_WAIT_MS;
  while (!fs.existsSync(keyPath) && isLiveProcess(pid)) {
    if (Date.now() > deadline) {
      throw new BacktestrError('E_SERVICE_UNAVAILABLE', `the kernel (pid ${pid}) for this profile did not open its control socket within ${KERNEL_STARTING_WAIT_MS} ms; check it with 'backtestr audit ps' or stop it`, { pid });
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
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
