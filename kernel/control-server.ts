/**
 * The kernel's external interface for the desktop shell, the CLI and auditors.
 *
 * Clients first send a HELLO to the control socket, a nanomsg reply socket that serves any number
 * of clients one request at a time (protocol/handshake.ts). For each verified HELLO the kernel
 * binds a private pair socket for that client and replies with its name. The client's envelopes
 * travel there, and each connection has its own keys and its own phase. A client that connects
 * and sends nothing therefore blocks nobody.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { Channel, type ChannelViolation } from '../protocol/channel';
import { EnvelopeCodec } from '../protocol/envelope';
import { createWelcome, deriveSessionSecret, verifyHello } from '../protocol/handshake';
import { deriveDirectionKeys, newChannelSecret, wipe } from '../protocol/keys';
import { PeerId } from '../protocol/layout';
import { NanomsgTransport } from '../protocol/transport';
import { endpointIn } from './runtime-dir';
import type { Phase } from './policy';

export const CONTROL_KEY_FILE = 'control.key';
export const CONTROL_ENDPOINT_NAME = 'control';
/** Client nonces remembered to reject a replayed HELLO. */
const REMEMBERED_NONCES = 4096;
/** Client connections open at once; a HELLO beyond this gets no reply. */
export const MAX_CLIENT_SESSIONS = 32;
/** A session with no request in flight is closed after this long without a request, in ms. */
export const SESSION_IDLE_TIMEOUT_MS = 10 * 60_000;
const IDLE_SWEEP_INTERVAL_MS = 30_000;

/** The state of one client connection. */
export class ControlSession {
  private sessionExpiresAt = 0;
  /** The auth session token this connection unlocked with, so the kernel can end it on close. */
  private token: string | undefined;
  readonly openedAt = Date.now();
  lastRequestAt = Date.now();
  requestsInFlight = 0;

  constructor(readonly id: number, readonly channel: Channel) {}

  get phase(): Phase {
    return Date.now() < this.sessionExpiresAt ? 'unlocked' : 'locked';
  }

  get authSession(): string | undefined {
    return this.token;
  }

  unlock(expiresAt: number, authSession: string): void {
    this.sessionExpiresAt = expiresAt;
    this.token = authSession;
  }

  lock(): void {
    this.sessionExpiresAt = 0;
    this.token = undefined;
  }
}

export type ControlViolation = ChannelViolation | { reason: 'handshake' | 'session-limit'; message: string };

export interface ControlServerEvents {
  session: [session: ControlSession];
  violation: [violation: ControlViolation];
}

export class ControlServer extends EventEmitter<ControlServerEvents> {
  private readonly rendezvous: NanomsgTransport;
  private readonly controlKey: Uint8Array;
  private readonly keyPath: string;
  private readonly seenNonces = new Set<string>();
  private readonly sessions = new Set<ControlSession>();
  private readonly idleSweep: NodeJS.Timeout;
  private nextSessionId = 1;
  rejectedFrames = 0;

  constructor(private readonly runtimeDir: string) {
    super();
    this.controlKey = newChannelSecret();
    this.keyPath = path.join(runtimeDir, CONTROL_KEY_FILE);
    // 'wx' fails if the file exists, so a leftover or planted key file is never reused.
    fs.rmSync(this.keyPath, { force: true });
    fs.writeFileSync(this.keyPath, this.controlKey, { mode: 0o600, flag: 'wx' });
    const endpoint = endpointIn(runtimeDir, CONTROL_ENDPOINT_NAME);
    fs.rmSync(endpoint.slice('ipc://'.length), { force: true });
    this.rendezvous = new NanomsgTransport(endpoint, 'bind', 'rep');
    this.rendezvous.on('frame', (frame) => this.handshake(frame));
    this.idleSweep = setInterval(() => this.closeIdleSessions(), IDLE_SWEEP_INTERVAL_MS);
    this.idleSweep.unref();
  }

  /** The key an in-process client uses, so that it need not read the file. */
  get keyForEmbeddedClient(): Uint8Array {
    return this.controlKey.slice();
  }

  get activeSessions(): readonly ControlSession[] {
    return [...this.sessions];
  }

  close(): void {
    clearInterval(this.idleSweep);
    for (const session of this.sessions) session.channel.close('kernel shutting down');
    this.rendezvous.close();
    fs.rmSync(this.keyPath, { force: true });
    wipe(this.controlKey);
  }

  private handshake(hello: Uint8Array): void {
    const clientNonce = verifyHello(this.controlKey, hello);
    const nonceKey = clientNonce ? Buffer.from(clientNonce).toString('hex') : '';
    if (!clientNonce || this.seenNonces.has(nonceKey)) {
      // No reply: a client without the key learns nothing, and the reply socket moves on to the next request.
      this.reject({ reason: 'handshake', message: clientNonce ? 'replayed HELLO' : 'HELLO does not verify' });
      return;
    }
    this.seenNonces.add(nonceKey);
    if (this.seenNonces.size > REMEMBERED_NONCES) this.seenNonces.delete(this.seenNonces.values().next().value as string);
    if (this.sessions.size >= MAX_CLIENT_SESSIONS) {
      this.reject({ reason: 'session-limit', message: `${MAX_CLIENT_SESSIONS} client sessions are open already` });
      return;
    }

    const welcome = createWelcome(this.controlKey, clientNonce);
    const secret = deriveSessionSecret(this.controlKey, clientNonce, welcome.kernelNonce);
    const keys = deriveDirectionKeys(secret, PeerId.kernel, PeerId.client);
    wipe(secret);

    const socketPath = endpointIn(this.runtimeDir, welcome.endpointName);
    const transport = new NanomsgTransport(socketPath, 'bind');
    const channel = new Channel(transport, new EnvelopeCodec(keys, PeerId.kernel, PeerId.client), 'client');
    const session = new ControlSession(this.nextSessionId++, channel);
    channel.on('violation', (violation) => this.reject(violation));
    channel.on('closed', () => {
      this.sessions.delete(session);
      fs.rmSync(socketPath.slice('ipc://'.length), { force: true });
    });
    this.sessions.add(session);
    this.emit('session', session);
    this.rendezvous.send(welcome.frame);
  }

  private reject(violation: ControlViolation): void {
    this.rejectedFrames++;
    this.emit('violation', violation);
  }

  private closeIdleSessions(): void {
    const now = Date.now();
    for (const session of this.sessions) {
      if (session.requestsInFlight === 0 && now - session.lastRequestAt > SESSION_IDLE_TIMEOUT_MS) {
        session.channel.close(`idle for more than ${SESSION_IDLE_TIMEOUT_MS} ms`);
      }
    }
  }
}
