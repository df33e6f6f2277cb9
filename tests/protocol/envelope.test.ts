import { Packr } from 'msgpackr';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { EnvelopeCodec, EnvelopeRejected } from '../../protocol/envelope';
import { deriveDirectionKeys, newChannelSecret } from '../../protocol/keys';
import { HEADER_SIZE, LENGTH_OFFSET, MAX_FRAME_BYTES, MessageKind, NONCE_SIZE, PeerId, SEQUENCE_OFFSET, TIMESTAMP_OFFSET } from '../../protocol/layout';

function pair(now: () => number = Date.now) {
  const secret = newChannelSecret();
  const kernel = new EnvelopeCodec(deriveDirectionKeys(secret, PeerId.kernel, PeerId.storage), PeerId.kernel, PeerId.storage, now);
  const service = new EnvelopeCodec(deriveDirectionKeys(secret, PeerId.storage, PeerId.kernel), PeerId.storage, PeerId.kernel, now);
  return { secret, kernel, service };
}

function rejectionReason(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    if (error instanceof EnvelopeRejected) return error.reason;
    throw error;
  }
  return 'accepted';
}

/** Seals `body` exactly as EnvelopeCodec does but with raw msgpack bytes, to test what decoding lets through. */
function sealRawBody(secret: Uint8Array, sequence: number, kind: number, plaintext: Uint8Array): Uint8Array {
  const keys = deriveDirectionKeys(secret, PeerId.kernel, PeerId.storage);
  const frame = new Uint8Array(HEADER_SIZE + plaintext.length + 16);
  const view = new DataView(frame.buffer);
  view.setUint8(0, 1);
  view.setUint8(1, kind);
  view.setUint16(2, PeerId.kernel);
  view.setUint16(4, PeerId.storage);
  view.setBigUint64(SEQUENCE_OFFSET, BigInt(sequence));
  view.setBigUint64(TIMESTAMP_OFFSET, BigInt(Date.now()));
  view.setUint32(LENGTH_OFFSET, plaintext.length + 16);
  const nonce = new Uint8Array(NONCE_SIZE);
  new DataView(nonce.buffer).setBigUint64(4, BigInt(sequence));
  frame.set(chacha20poly1305(keys.send, nonce, frame.subarray(0, HEADER_SIZE)).encrypt(plaintext), HEADER_SIZE);
  return frame;
}

describe('EnvelopeCodec', () => {
  test('round trip keeps the body and counts sequence numbers', () => {
    const { kernel, service } = pair();
    const frame = kernel.seal(MessageKind.Request, { id: 7, method: 'storage.queryBars', params: { symbol: 'SPX' } });
    const opened = service.open(frame);
    expect(opened.kind).toBe(MessageKind.Request);
    expect(opened.sequence).toBe(0);
    expect(opened.body).toEqual({ id: 7, method: 'storage.queryBars', params: { symbol: 'SPX' } });
    expect(kernel.sent).toBe(1);
    expect(service.received).toBe(1);
  });

  test('replayed envelope is rejected', () => {
    const { kernel, service } = pair();
    const frame = kernel.seal(MessageKind.Heartbeat, { at: 1 });
    service.open(frame);
    expect(rejectionReason(() => service.open(frame))).toBe('sequence');
  });

  test('reordered and skipped envelopes are rejected', () => {
    const { kernel, service } = pair();
    kernel.seal(MessageKind.Heartbeat, { at: 1 });
    const second = kernel.seal(MessageKind.Heartbeat, { at: 2 });
    expect(rejectionReason(() => service.open(second))).toBe('sequence');
  });

  test('reflected envelope fails authentication', () => {
    const { kernel } = pair();
    const frame = kernel.seal(MessageKind.Heartbeat, { at: 1 });
    // The kernel's own envelope sent back to it: the header names the wrong sender.
    expect(rejectionReason(() => kernel.open(frame))).toBe('header');
  });

  test('every flipped bit is rejected and the counter stays', () => {
    const { kernel, service } = pair();
    const frame = kernel.seal(MessageKind.Request, { id: 1, method: 'storage.listSymbols', params: {} });
    for (let bit = 0; bit < frame.length * 8; bit += 3) {
      const copy = frame.slice();
      copy[bit >> 3] ^= 1 << (bit & 7);
      expect(rejectionReason(() => service.open(copy))).not.toBe('accepted');
      expect(service.received).toBe(0);
    }
    expect(service.open(frame).body).toEqual({ id: 1, method: 'storage.listSymbols', params: {} });
  });

  test('truncated frames are rejected', () => {
    const { kernel, service } = pair();
    const frame = kernel.seal(MessageKind.Heartbeat, { at: 1 });
    expect(rejectionReason(() => service.open(frame.subarray(0, frame.length - 1)))).toBe('truncated');
    expect(rejectionReason(() => service.open(frame.subarray(0, 10)))).toBe('truncated');
  });

  test('oversized frame is rejected before anything else', () => {
    const { service } = pair();
    expect(rejectionReason(() => service.open(new Uint8Array(MAX_FRAME_BYTES + 1)))).toBe('oversized');
  });

  test('stale timestamp is rejected', () => {
    let clock = 1_000_000_000_000;
    const { kernel, service } = pair(() => clock);
    const frame = kernel.seal(MessageKind.Heartbeat, { at: 1 });
    clock += 61_000;
    expect(rejectionReason(() => service.open(frame))).toBe('stale');
  });

  test('__proto__ key is rejected and pollutes nothing', () => {
    const { secret, service } = pair();
    // Build the map by hand: a JS object literal cannot carry an own __proto__ key.
    const packr = new Packr({ useRecords: false });
    const inner = new Map<string, unknown>([['__proto__', new Map([['polluted', true]])]]);
    const body = packr.pack(new Map<string, unknown>([['id', 1], ['method', 'storage.listSymbols'], ['params', inner]]));
    const frame = sealRawBody(secret, 0, MessageKind.Request, body);
    expect(rejectionReason(() => service.open(frame))).toBe('decode');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted')).toBe(false);
  });

  test('extension types such as Date are rejected', () => {
    const { secret, service } = pair();
    const body = new Packr({ useRecords: false }).pack({ at: new Date() });
    expect(rejectionReason(() => service.open(sealRawBody(secret, 0, MessageKind.Heartbeat, body)))).toBe('decode');
  });

  test('unexpected field is rejected by the kind schema', () => {
    const { secret, service } = pair();
    const body = new Packr({ useRecords: false }).pack({ at: 5, extra: 1 });
    expect(rejectionReason(() => service.open(sealRawBody(secret, 0, MessageKind.Heartbeat, body)))).toBe('schema');
  });

  test('unknown kind is rejected', () => {
    const { secret, service } = pair();
    const body = new Packr({ useRecords: false }).pack({});
    expect(rejectionReason(() => service.open(sealRawBody(secret, 0, 200, body)))).toBe('header');
  });

  test('destroyed codec refuses to seal', () => {
    const { kernel } = pair();
    kernel.destroy();
    expect(() => kernel.seal(MessageKind.Heartbeat, { at: 1 })).toThrow(expect.objectContaining({ code: 'E_CHANNEL_CLOSED' }));
  });
});

describe('binary bodies', () => {
  test('byte strings survive the wipe of the decrypted plaintext', () => {
    const { kernel, service } = pair();
    const csv = new TextEncoder().encode('date,open,high,low,close,volume\n');
    const opened = service.open(kernel.seal(MessageKind.Request, { id: 1, method: 'storage.importBars', params: { csv } }));
    const params = (opened.body as { params: { csv: Uint8Array } }).params;
    expect(new TextDecoder().decode(params.csv)).toBe('date,open,high,low,close,volume\n');
  });

  test('Float64Array bytes arrive intact', () => {
    const { kernel, service } = pair();
    const values = new Float64Array([1.5, -2.25, Math.PI, 1e-300, Number.MAX_VALUE]);
    const opened = service.open(kernel.seal(MessageKind.Response, { id: 1, result: values }));
    const bytes = (opened.body as { result: Uint8Array }).result;
    expect(Array.from(new Float64Array(bytes.slice().buffer))).toEqual(Array.from(values));
  });
});
