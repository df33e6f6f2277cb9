/**
 * The kernel's external interface: one nanomsg pair socket in the runtime directory, spoken to
 * with the control handshake (protocol/handshake.ts) and then ordinary envelopes.
 *
 * One client session is active at a time. A verified HELLO replaces the current session, so a
 * client that crashed can reconnect; a frame that is neither a verified HELLO nor an envelope of
 * the current session is rejected, counted and reported.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { Channel, type ChannelViolation, type FrameLink } from '../protocol/channel';
import { EnvelopeCodec } from '../protocol/envelope';
import { BacktestrError } from '../protocol/errors';
import { createWelcome, deriveSessionSecret, isHelloFrame, verifyHello } from '../protocol/handshake';
import { deriveDirectionKeys, newChannelSecret, wipe } from '../protocol/keys';
import { PeerId } from '../protocol/layout';
import { PairTransport } from '../protocol/transport';
import { endpointIn } from './runtime-dir';
import type { Phase } from './policy';

export const CONTROL_KEY_FILE = 'control.key';
export const CONTROL_ENDPOINT_NAME = 'control';
/** Client nonces remembered to refuse a replayed HELLO. */
const REMEMBERED_NONCES = 4096;

/** The state of one client connection. */
export class ControlSession {
  private sessionExpiresAt = 0;
  readonly openedAt = Date.now();

  constructor(readonly id: number, readonly channel: Channel) {}

  get phase(): Phase {
    return Date.now() < this.sessionExpiresAt ? 'unlocked' : 'locked';
  }

  unlock(expiresAt: number): void {
    this.sessionExpiresAt = expiresAt;
  }

  lock(): void {
    this.sessionExpiresAt = 0;
  }
}

/** Frames of the current session, passed on from the shared socket; closing detaches only. */
class SessionLink extends EventEmitter implements FrameLink {
  private detached = false;
  constructor(private readonly transport: PairTransport) {
    super();
  }
  send(frame: Uint8Array): void {
    if (this.detached) throw new BacktestrError('E_CHANNEL_CLOSED', 'control session is closed');
    this.transport.send(frame);
  }
  close(): void {
    this.detached = true;
  }
  deliver(frame: Uint8Array): void {
    if (!this.detached) this.emit('frame', frame);
  }
}

export interface ControlServerEvents {
  session: [session: ControlSession];
  violation: [violation: ChannelViolation | { reason: 'handshake' | 'no-session'; message: string }];
}

export class ControlServer extends EventEmitter<ControlServerEvents> {
  private readonly transport: PairTransport;
  private readonly controlKey: Uint8Array;
  private readonly keyPath: string;
  private readonly seenNonces = new Set<string>();
  private current: { session: ControlSession; link: SessionLink } | undefined;
  private nextSessionId = 1;
  rejectedFrames = 0;

  constructor(runtimeDir: string) {
    super();
    this.controlKey = newChannelSecret();
    this.keyPath = path.join(runtimeDir, CONTROL_KEY_FILE);
    // 'wx' fails if the file exists, so a leftover or planted key file is never reused.
    fs.rmSync(this.keyPath, { force: true });
    fs.writeFileSync(this.keyPath, this.controlKey, { mode: 0o600, flag: 'wx' });
    const endpoint = endpointIn(runtimeDir, CONTROL_ENDPOINT_NAME);
    fs.rmSync(endpoint.slice('ipc://'.length), { force: true });
    this.transport = new PairTransport(endpoint, 'bind');
    this.transport.on('frame', (frame) => this.receive(frame));
  }

  /** The key an in-process client uses, so that it need not read the file. */
  get keyForEmbeddedClient(): Uint8Array {
    return this.controlKey.slice();
  }

  get activeSession(): ControlSession | undefined {
    return this.current?.session;
  }

  close(): void {
    this.current?.session.channel.close('kernel shutting down');
    this.current = undefined;
    this.transport.close();
    fs.rmSync(this.keyPath, { force: true });
    wipe(this.controlKey);
  }

  private receive(frame: Uint8Array): void {
    if (isHelloFrame(frame)) {
      this.handshake(frame);
      return;
    }
    if (!this.current) {
      this.rejectedFrames++;
      this.emit('violation', { reason: 'no-session', message: `frame of ${frame.length} bytes without a handshake` });
      return;
    }
    this.current.link.deliver(frame);
  }

  private handshake(hello: Uint8Array): void {
    const clientNonce = verifyHello(this.controlKey, hello);
    const nonceKey = clientNonce ? Buffer.from(clientNonce).toString('hex') : '';
    if (!clientNonce || this.seenNonces.has(nonceKey)) {
      this.rejectedFrames++;
      this.emit('violation', { reason: 'handshake', message: clientNonce ? 'replayed HELLO' : 'HELLO does not verify' });
      return;
    }
    this.seenNonces.add(nonceKey);
    if (this.seenNonces.size > REMEMBERED_NONCES) this.seenNonces.delete(this.seenNonces.values().next().value as string);

    this.current?.session.channel.close('replaced by a new client connection');
    const welcome = createWelcome(this.controlKey, clientNonce);
    const secret = deriveSessionSecret(this.controlKey, clientNonce, welcome.kernelNonce);
    const keys = deriveDirectionKeys(secret, PeerId.kernel, PeerId.client);
    wipe(secret);

    const link = new SessionLink(this.transport);
    const channel = new Channel(link, new EnvelopeCodec(keys, PeerId.kernel, PeerId.client), 'client');
    const session = new ControlSession(this.nextSessionId++, channel);
    channel.on('violation', (violation) => {
      this.rejectedFrames++;
      this.emit('violation', violation);
    });
    channel.on('closed', () => {
      if (this.current?.session === session) this.current = undefined;
    });
    this.current = { session, link };
    this.transport.send(welcome.frame);
    this.emit('session', session);
  }
}
