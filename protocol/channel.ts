/**
 * A request/response channel over one transport and one envelope codec.
 *
 * Either end may send requests. Any envelope that fails to open is a protocol violation: the
 * channel sends one generic Reject envelope, reports the reason through the 'violation' event,
 * closes, and fails every pending request. A closed channel is never reopened; the peer must be
 * restarted (services) or must handshake again (clients).
 */
import { EventEmitter } from 'node:events';
import { BacktestrError, isErrorCode, toBacktestrError } from './errors';
import { EnvelopeRejected, type EnvelopeCodec, type RejectReason } from './envelope';
import { MessageKind } from './layout';
import type { ErrorResponseBody, RequestBody, ResponseBody } from './messages';

/** The layer below a channel, which carries whole frames in and out; NanomsgTransport implements it. */
export interface FrameLink {
  send(frame: Uint8Array): void;
  close(): void;
  on(event: 'frame', listener: (frame: Uint8Array) => void): unknown;
  on(event: 'failure', listener: (error: BacktestrError) => void): unknown;
}

/** Time a channel keeps its socket open after sending Reject, so the peer receives it, in ms. */
const REJECT_FLUSH_MS = 200;

export type RequestHandler = (method: string, params: unknown) => Promise<unknown>;

export interface ChannelViolation {
  reason: RejectReason;
  message: string;
}

export interface ChannelEvents {
  /** A message other than a request or response (Ready, Heartbeat, SecurityEvent, ...). */
  message: [kind: MessageKind, body: unknown];
  violation: [violation: ChannelViolation];
  closed: [reason: string];
}

interface PendingRequest {
  method: string;
  resolve: (result: unknown) => void;
  reject: (error: BacktestrError) => void;
  timer: NodeJS.Timeout;
}

export interface ChannelCounters {
  sent: number;
  received: number;
  rejected: number;
}

export class Channel extends EventEmitter<ChannelEvents> {
  private readonly pending = new Map<number, PendingRequest>();
  private nextRequestId = 0;
  private requestHandler: RequestHandler | undefined;
  private closedReason: string | undefined;
  private rejectedCount = 0;

  constructor(
    private readonly transport: FrameLink,
    private readonly codec: EnvelopeCodec,
    readonly peerName: string,
  ) {
    super();
    transport.on('frame', (frame) => this.receive(frame));
    transport.on('failure', (error) => this.close(`transport failed: ${error.message}`));
  }

  get isClosed(): boolean {
    return this.closedReason !== undefined;
  }

  get counters(): ChannelCounters {
    return { sent: this.codec.sent, received: this.codec.received, rejected: this.rejectedCount };
  }

  /** Sets the handler for the peer's requests. Without one, requests fail with E_UNKNOWN_METHOD. */
  onRequest(handler: RequestHandler): void {
    this.requestHandler = handler;
  }

  request(method: string, params: unknown, timeoutMs: number): Promise<unknown> {
    if (this.closedReason !== undefined) return Promise.reject(new BacktestrError('E_CHANNEL_CLOSED', `channel to ${this.peerName} is closed: ${this.closedReason}`));
    const id = this.nextRequestId++;
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new BacktestrError('E_TIMEOUT', `${method} on ${this.peerName} timed out after ${timeoutMs} ms`, { method, timeoutMs }));
      }, timeoutMs);
      this.pending.set(id, { method, resolve, reject, timer });
      try {
        this.send(MessageKind.Request, { id, method, params } satisfies RequestBody);
      } catch (error) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(toBacktestrError(error));
      }
    });
  }

  /** Sends a one-way message. Throws E_CHANNEL_CLOSED on a closed channel. */
  send(kind: MessageKind, body: unknown): void {
    if (this.closedReason !== undefined) throw new BacktestrError('E_CHANNEL_CLOSED', `channel to ${this.peerName} is closed: ${this.closedReason}`);
    this.transport.send(this.codec.seal(kind, body));
  }

  /**
   * Closes the channel and fails pending requests. With `flushMs`, the socket stays open that
   * long so that a last frame already sent (the Reject) reaches the peer; nanomsg drops unsent
   * frames when a socket closes. Nothing received in that time is processed.
   */
  close(reason: string, flushMs = 0): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(new BacktestrError('E_CHANNEL_CLOSED', `channel to ${this.peerName} closed during ${pending.method}: ${reason}`));
      this.pending.delete(id);
    }
    this.codec.destroy();
    if (flushMs > 0) setTimeout(() => this.transport.close(), flushMs).unref();
    else this.transport.close();
    this.emit('closed', reason);
  }

  private receive(frame: Uint8Array): void {
    if (this.closedReason !== undefined) return;
    let envelope;
    try {
      envelope = this.codec.open(frame);
    } catch (error) {
      this.rejectedCount++;
      const violation: ChannelViolation = error instanceof EnvelopeRejected
        ? { reason: error.reason, message: error.message }
        : { reason: 'decode', message: 'envelope could not be opened' };
      this.rejectPeer(violation);
      return;
    }

    switch (envelope.kind) {
      case MessageKind.Request:
        void this.answer(envelope.body as RequestBody);
        return;
      case MessageKind.Response:
        this.settle((envelope.body as ResponseBody).id, (pending) => pending.resolve((envelope.body as ResponseBody).result));
        return;
      case MessageKind.ErrorResponse: {
        const { id, error } = envelope.body as ErrorResponseBody;
        const code = isErrorCode(error.code) ? error.code : 'E_INTERNAL';
        this.settle(id, (pending) => pending.reject(new BacktestrError(code, error.message, error.details)));
        return;
      }
      case MessageKind.Reject:
        this.close(`${this.peerName} rejected an envelope from us`);
        return;
      default:
        this.emit('message', envelope.kind, envelope.body);
    }
  }

  private settle(id: number, action: (pending: PendingRequest) => void): void {
    const pending = this.pending.get(id);
    // A late response to a request that timed out is harmless; anything else is a peer bug.
    if (!pending) return;
    clearTimeout(pending.timer);
    this.pending.delete(id);
    action(pending);
  }

  private async answer(request: RequestBody): Promise<void> {
    let reply: { kind: MessageKind; body: unknown };
    try {
      if (!this.requestHandler) throw new BacktestrError('E_UNKNOWN_METHOD', `no handler for ${request.method}`);
      const result = await this.requestHandler(request.method, request.params);
      reply = { kind: MessageKind.Response, body: { id: request.id, result: result ?? null } };
    } catch (error) {
      reply = { kind: MessageKind.ErrorResponse, body: { id: request.id, error: toBacktestrError(error).toWire() } };
    }
    if (this.closedReason !== undefined) return;
    try {
      this.send(reply.kind, reply.body);
    } catch (error) {
      // The result could not be encoded because it is too large or not plain data, so the caller gets an error instead.
      const failure = toBacktestrError(error);
      this.send(MessageKind.ErrorResponse, { id: request.id, error: { code: failure.code, message: `response to ${request.method} could not be sent: ${failure.message}`, details: {} } });
    }
  }

  private rejectPeer(violation: ChannelViolation): void {
    this.emit('violation', violation);
    let note = '';
    try {
      this.send(MessageKind.Reject, { code: 'E_ENVELOPE_REJECTED' });
    } catch (error) {
      // The transport may already be unusable; closing below is what matters, so only record it.
      note = `; the Reject envelope could not be sent: ${toBacktestrError(error).message}`;
    }
    this.close(`protocol violation (${violation.reason}) by ${this.peerName}: ${violation.message}${note}`, REJECT_FLUSH_MS);
  }
}
