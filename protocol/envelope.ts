/**
 * Sealing and opening envelopes (layout in layout.ts).
 *
 * An EnvelopeCodec contains one channel end's direction keys and sequence counters. `open` runs the
 * checks in a fixed order, cheapest and allocation-free first: frame length, header fields,
 * exact next sequence number, freshness, then the tag, and only then body decoding and the
 * kind's schema. The expected sequence number advances only after the tag verifies, so a forged
 * envelope cannot desynchronise a channel.
 */
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { BacktestrError } from './errors';
import { decodeBody, encodeBody } from './codec';
import { parse } from './schema';
import { BODY_SCHEMAS } from './messages';
import {
  ENVELOPE_VERSION, FRESHNESS_WINDOW_MS, HEADER_SIZE, KIND_OFFSET, LENGTH_OFFSET, MAX_FRAME_BYTES, MessageKind,
  NONCE_SIZE, RECEIVER_OFFSET, RESERVED_OFFSET, SENDER_OFFSET, SEQUENCE_OFFSET, TAG_SIZE, TIMESTAMP_OFFSET,
  VERSION_OFFSET,
} from './layout';
import { wipe, type DirectionKeys } from './keys';

/** Reason an envelope was rejected, counted per reason and sent to the monitor. */
export type RejectReason = 'oversized' | 'truncated' | 'header' | 'sequence' | 'stale' | 'tag' | 'decode' | 'schema';

export class EnvelopeRejected extends BacktestrError {
  readonly reason: RejectReason;
  constructor(reason: RejectReason, message: string) {
    super('E_ENVELOPE_REJECTED', message, { reason });
    this.reason = reason;
  }
}

export interface OpenedEnvelope {
  kind: MessageKind;
  sequence: number;
  timestamp: number;
  body: unknown;
}

const KNOWN_KINDS: ReadonlySet<number> = new Set(Object.values(MessageKind));

function nonceFor(sequence: number): Uint8Array {
  const nonce = new Uint8Array(NONCE_SIZE);
  new DataView(nonce.buffer).setBigUint64(NONCE_SIZE - 8, BigInt(sequence));
  return nonce;
}

export class EnvelopeCodec {
  private sendSequence = 0;
  private receiveSequence = 0;
  private keys: DirectionKeys | undefined;

  constructor(
    keys: DirectionKeys,
    private readonly selfId: number,
    private readonly peerId: number,
    private readonly now: () => number = Date.now,
  ) {
    this.keys = keys;
  }

  /** Number of envelopes sealed so far (the next sequence number to send). */
  get sent(): number {
    return this.sendSequence;
  }

  /** Number of envelopes accepted so far (the next sequence number expected). */
  get received(): number {
    return this.receiveSequence;
  }

  seal(kind: MessageKind, body: unknown): Uint8Array {
    const keys = this.requireKeys();
    const plaintext = encodeBody(body);
    const ciphertextLength = plaintext.length + TAG_SIZE;
    if (HEADER_SIZE + ciphertextLength > MAX_FRAME_BYTES) {
      throw new BacktestrError('E_INVALID_PARAMS', `message of ${plaintext.length} bytes exceeds the frame limit of ${MAX_FRAME_BYTES} bytes`);
    }

    const sequence = this.sendSequence;
    const frame = new Uint8Array(HEADER_SIZE + ciphertextLength);
    const view = new DataView(frame.buffer);
    view.setUint8(VERSION_OFFSET, ENVELOPE_VERSION);
    view.setUint8(KIND_OFFSET, kind);
    view.setUint16(SENDER_OFFSET, this.selfId);
    view.setUint16(RECEIVER_OFFSET, this.peerId);
    view.setUint16(RESERVED_OFFSET, 0);
    view.setBigUint64(SEQUENCE_OFFSET, BigInt(sequence));
    view.setBigUint64(TIMESTAMP_OFFSET, BigInt(this.now()));
    view.setUint32(LENGTH_OFFSET, ciphertextLength);

    const header = frame.subarray(0, HEADER_SIZE);
    const ciphertext = chacha20poly1305(keys.send, nonceFor(sequence), header).encrypt(plaintext);
    frame.set(ciphertext, HEADER_SIZE);
    plaintext.fill(0);
    // Advance only after sealing succeeded, so a failed seal never skips a number.
    this.sendSequence = sequence + 1;
    return frame;
  }

  open(frame: Uint8Array): OpenedEnvelope {
    const keys = this.requireKeys();
    if (frame.length > MAX_FRAME_BYTES) throw new EnvelopeRejected('oversized', `frame of ${frame.length} bytes exceeds ${MAX_FRAME_BYTES}`);
    if (frame.length < HEADER_SIZE + TAG_SIZE) throw new EnvelopeRejected('truncated', `frame of ${frame.length} bytes is shorter than a header and tag`);

    const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    const version = view.getUint8(VERSION_OFFSET);
    const kind = view.getUint8(KIND_OFFSET);
    const sender = view.getUint16(SENDER_OFFSET);
    const receiver = view.getUint16(RECEIVER_OFFSET);
    const reserved = view.getUint16(RESERVED_OFFSET);
    const ciphertextLength = view.getUint32(LENGTH_OFFSET);
    if (version !== ENVELOPE_VERSION) throw new EnvelopeRejected('header', `unsupported envelope version ${version}`);
    if (!KNOWN_KINDS.has(kind)) throw new EnvelopeRejected('header', `unknown message kind ${kind}`);
    if (sender !== this.peerId || receiver !== this.selfId) throw new EnvelopeRejected('header', `envelope from ${sender} to ${receiver} on the channel ${this.peerId} to ${this.selfId}`);
    if (reserved !== 0) throw new EnvelopeRejected('header', 'reserved header field is not zero');
    if (HEADER_SIZE + ciphertextLength !== frame.length) throw new EnvelopeRejected('truncated', `header declares ${ciphertextLength} ciphertext bytes, frame carries ${frame.length - HEADER_SIZE}`);

    const sequence = view.getBigUint64(SEQUENCE_OFFSET);
    if (sequence !== BigInt(this.receiveSequence)) throw new EnvelopeRejected('sequence', `sequence number ${sequence}, expected ${this.receiveSequence}`);

    const timestamp = Number(view.getBigUint64(TIMESTAMP_OFFSET));
    if (Math.abs(this.now() - timestamp) > FRESHNESS_WINDOW_MS) throw new EnvelopeRejected('stale', `timestamp ${timestamp} is outside the freshness window`);

    let plaintext: Uint8Array;
    try {
      plaintext = chacha20poly1305(keys.receive, nonceFor(this.receiveSequence), frame.subarray(0, HEADER_SIZE)).decrypt(frame.subarray(HEADER_SIZE));
    } catch {
      // noble raises one generic error for any authentication failure, so the reason code is all we report.
      throw new EnvelopeRejected('tag', 'authentication tag does not verify');
    }
    this.receiveSequence += 1;

    let body: unknown;
    try {
      body = decodeBody(plaintext);
    } catch (error) {
      throw new EnvelopeRejected('decode', error instanceof Error ? error.message : 'body does not decode');
    } finally {
      plaintext.fill(0);
    }
    try {
      body = parse(BODY_SCHEMAS[kind as MessageKind], body, 'body');
    } catch (error) {
      throw new EnvelopeRejected('schema', error instanceof Error ? error.message : 'body does not match its schema');
    }
    return { kind: kind as MessageKind, sequence: Number(sequence), timestamp, body };
  }

  /** Wipes both keys; the codec refuses to seal or open afterwards. */
  destroy(): void {
    if (!this.keys) return;
    wipe(this.keys.send, this.keys.receive);
    this.keys = undefined;
  }

  private requireKeys(): DirectionKeys {
    if (!this.keys) throw new BacktestrError('E_CHANNEL_CLOSED', 'channel is closed');
    return this.keys;
  }
}
