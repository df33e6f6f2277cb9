/**
 * A nanomsg socket (pair, or req/rep for the control rendezvous) carrying whole frames, driven from the event loop without ever blocking.
 *
 * We talk to the nanomsg binding's native functions directly instead of its Duplex socket class,
 * because that class's flush loop retries a full send buffer in a tight loop (the event loop froze
 * for seconds in measurements with nanomsg 4.2.1, forever with a dead peer). Here a send that
 * would block is queued, the queue is drained when libuv reports the socket writable, drains yield
 * to the event loop between batches, and a queue over OUTBOX_MAX_BYTES means the peer is not
 * reading: the transport fails instead of growing without bound.
 */
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { BacktestrError } from './errors';
import { TRANSPORT_MAX_BYTES } from './layout';

interface NanomsgBinding {
  AF_SP: number;
  NN_PAIR: number;
  NN_REQ: number;
  NN_REP: number;
  NN_SOL_SOCKET: number;
  NN_RCVMAXSIZE: number;
  NN_LINGER: number;
  NN_DONTWAIT: number;
  EAGAIN: number;
  Socket(domain: number, protocol: number): number;
  Setopt(socket: number, level: number, option: number, value: number): number;
  Bind(socket: number, address: string): number;
  Connect(socket: number, address: string): number;
  Send(socket: number, message: Uint8Array, flags: number): number;
  Recv(socket: number, flags: number): Buffer | number;
  Errno(): number;
  Err(): string;
  PollSocket(socket: number, isSender: boolean, callback: (events: number) => void): unknown;
  PollStop(handle: unknown): void;
  Close(socket: number): number;
}

const nn: NanomsgBinding = require(path.join(path.dirname(require.resolve('nanomsg/package.json')), 'build', 'Release', 'node_nanomsg.node'));

/** Bytes queued for a peer that is not reading before the transport gives up on it. */
export const OUTBOX_MAX_BYTES = 256 * 1024 * 1024;
/** Frames sent or received per event-loop turn before yielding, so one busy peer cannot starve others. */
const FRAMES_PER_TURN = 1000;

export type TransportRole = 'bind' | 'connect';

/**
 * nanomsg scalability protocol of the socket: 'pair' for a channel with one peer; 'rep' and 'req'
 * for the control rendezvous, where a reply socket serves many requesting clients one message
 * at a time and each reply goes back to the client that sent the request.
 */
export type TransportProtocol = 'pair' | 'req' | 'rep';

export interface TransportEvents {
  frame: [frame: Uint8Array];
  failure: [error: BacktestrError];
}

export class NanomsgTransport extends EventEmitter<TransportEvents> {
  private readonly socket: number;
  private readonly outbox: Uint8Array[] = [];
  private outboxBytes = 0;
  private receivePoll: unknown;
  private sendPoll: unknown;
  private closed = false;

  constructor(readonly address: string, role: TransportRole, protocol: TransportProtocol = 'pair') {
    super();
    const protocolNumber = { pair: nn.NN_PAIR, req: nn.NN_REQ, rep: nn.NN_REP }[protocol];
    this.socket = nn.Socket(nn.AF_SP, protocolNumber);
    if (this.socket < 0) throw new BacktestrError('E_INTERNAL', `nanomsg socket failed: ${nn.Err()}`);
    this.check(nn.Setopt(this.socket, nn.NN_SOL_SOCKET, nn.NN_RCVMAXSIZE, TRANSPORT_MAX_BYTES), 'set receive limit');
    this.check(nn.Setopt(this.socket, nn.NN_SOL_SOCKET, nn.NN_LINGER, 0), 'set linger');
    this.check(role === 'bind' ? nn.Bind(this.socket, address) : nn.Connect(this.socket, address), `${role} ${address}`);
    this.receivePoll = nn.PollSocket(this.socket, false, (events) => {
      if (events) this.drainReceived();
    });
  }

  /** Sends one frame, or queues it if the peer's buffer is full. Never blocks. */
  send(frame: Uint8Array): void {
    if (this.closed) throw new BacktestrError('E_CHANNEL_CLOSED', `transport ${this.address} is closed`);
    if (this.outbox.length === 0 && this.trySend(frame)) return;
    this.outbox.push(frame);
    this.outboxBytes += frame.length;
    if (this.outboxBytes > OUTBOX_MAX_BYTES) {
      this.fail(new BacktestrError('E_SERVICE_UNAVAILABLE', `peer on ${this.address} is not reading: ${this.outboxBytes} bytes queued`));
      return;
    }
    this.startSendPoll();
  }

  /** Bytes waiting for the peer to read. */
  get queuedBytes(): number {
    return this.outboxBytes;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopSendPoll();
    if (this.receivePoll) nn.PollStop(this.receivePoll);
    this.receivePoll = undefined;
    this.outbox.length = 0;
    this.outboxBytes = 0;
    nn.Close(this.socket);
  }

  private trySend(frame: Uint8Array): boolean {
    const result = nn.Send(this.socket, frame, nn.NN_DONTWAIT);
    if (result >= 0) return true;
    if (nn.Errno() === nn.EAGAIN) return false;
    this.fail(new BacktestrError('E_SERVICE_UNAVAILABLE', `send on ${this.address} failed: ${nn.Err()}`));
    return false;
  }

  private drainOutbox(): void {
    let sent = 0;
    while (!this.closed && this.outbox.length > 0 && sent < FRAMES_PER_TURN) {
      const frame = this.outbox[0];
      if (!this.trySend(frame)) return; // still full: wait for the next writable event
      this.outbox.shift();
      this.outboxBytes -= frame.length;
      sent++;
    }
    if (this.outbox.length === 0) this.stopSendPoll();
  }

  private drainReceived(): void {
    for (let count = 0; count < FRAMES_PER_TURN && !this.closed; count++) {
      const message = nn.Recv(this.socket, nn.NN_DONTWAIT);
      if (typeof message === 'number') {
        if (message < 0 && nn.Errno() !== nn.EAGAIN) this.fail(new BacktestrError('E_SERVICE_UNAVAILABLE', `receive on ${this.address} failed: ${nn.Err()}`));
        return;
      }
      this.emit('frame', message);
    }
    // More may be waiting: level-triggered polling calls us again on the next turn.
  }

  private startSendPoll(): void {
    if (this.sendPoll || this.closed) return;
    this.sendPoll = nn.PollSocket(this.socket, true, (events) => {
      if (events) this.drainOutbox();
    });
  }

  private stopSendPoll(): void {
    if (!this.sendPoll) return;
    nn.PollStop(this.sendPoll);
    this.sendPoll = undefined;
  }

  private check(result: number, what: string): void {
    if (result >= 0) return;
    const message = nn.Err();
    nn.Close(this.socket);
    throw new BacktestrError('E_INTERNAL', `nanomsg: ${what} failed: ${message}`);
  }

  private fail(error: BacktestrError): void {
    if (this.closed) return;
    this.emit('failure', error);
    this.close();
  }
}
