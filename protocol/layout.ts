/**
 * Envelope v1 byte layout. Every size below comes from a named constant, and
 * tests/protocol/layout.test.ts parses this drawing and checks it against the constants, so the
 * picture cannot drift from the code.
 *
 *   offset  size  field
 *   0       1     version           (ENVELOPE_VERSION)
 *   1       1     kind              (MessageKind)
 *   2       2     sender id         (big-endian)
 *   4       2     receiver id       (big-endian)
 *   6       2     reserved          (must be 0)
 *   8       8     sequence number   (big-endian, also the AEAD nonce)
 *   16      8     timestamp         (big-endian, ms since the Unix epoch)
 *   24      4     ciphertext length (big-endian, includes the tag)
 *   28      n     ciphertext        (ChaCha20-Poly1305 of the msgpackr body, 16-byte tag last)
 *
 * The whole 28-byte header is the AEAD's associated data, so no header field can be changed
 * without the tag failing.
 */
export const ENVELOPE_VERSION = 1;

export const VERSION_SIZE = 1;
export const KIND_SIZE = 1;
export const PEER_ID_SIZE = 2;
export const RESERVED_SIZE = 2;
export const SEQUENCE_SIZE = 8;
export const TIMESTAMP_SIZE = 8;
export const LENGTH_SIZE = 4;

export const VERSION_OFFSET = 0;
export const KIND_OFFSET = VERSION_OFFSET + VERSION_SIZE;
export const SENDER_OFFSET = KIND_OFFSET + KIND_SIZE;
export const RECEIVER_OFFSET = SENDER_OFFSET + PEER_ID_SIZE;
export const RESERVED_OFFSET = RECEIVER_OFFSET + PEER_ID_SIZE;
export const SEQUENCE_OFFSET = RESERVED_OFFSET + RESERVED_SIZE;
export const TIMESTAMP_OFFSET = SEQUENCE_OFFSET + SEQUENCE_SIZE;
export const LENGTH_OFFSET = TIMESTAMP_OFFSET + TIMESTAMP_SIZE;
export const HEADER_SIZE = LENGTH_OFFSET + LENGTH_SIZE;

/** Poly1305 tag size (RFC 8439, section 2.8). */
export const TAG_SIZE = 16;
/** ChaCha20-Poly1305 nonce size (RFC 8439, section 2.8); the sequence number fills its last 8 bytes. */
export const NONCE_SIZE = 12;

/**
 * Largest frame a receiver accepts, in bytes. A result with a 1,000,000-bar equity curve is about
 * 8 MB, so 32 MiB leaves room while bounding what one peer can make another allocate.
 */
export const MAX_FRAME_BYTES = 32 * 1024 * 1024;

/** Largest single byte field (a CSV file) that fits one envelope with room for the rest of the body. */
export const MAX_PAYLOAD_BYTES = MAX_FRAME_BYTES - 1024 * 1024;

/**
 * nanomsg's own receive limit. It is a little above MAX_FRAME_BYTES so that frames just over our
 * limit still reach our check and are counted; nanomsg drops anything larger in C before
 * allocating it, and then the peer's next envelope fails the sequence check.
 */
export const TRANSPORT_MAX_BYTES = MAX_FRAME_BYTES + 1024 * 1024;

/** Largest accepted difference between an envelope's timestamp and the receiver's clock, in ms. */
export const FRESHNESS_WINDOW_MS = 60_000;

/** Message kinds (the header's kind byte). */
export const MessageKind = {
  Ready: 1,
  Request: 2,
  Response: 3,
  ErrorResponse: 4,
  Heartbeat: 5,
  HeartbeatAck: 6,
  SecurityEvent: 7,
  Shutdown: 8,
  Reject: 9,
} as const;
export type MessageKind = (typeof MessageKind)[keyof typeof MessageKind];

const KIND_NAMES: Record<number, string> = Object.fromEntries(Object.entries(MessageKind).map(([name, value]) => [value, name]));

export function messageKindName(kind: number): string {
  return KIND_NAMES[kind] ?? `unknown(${kind})`;
}

/** Peer ids written into the header. The kernel is 0 and the external client is 100. */
export const PeerId = {
  kernel: 0,
  auth: 1,
  storage: 2,
  sandbox: 3,
  integrity: 4,
  monitor: 5,
  client: 100,
} as const;
export type PeerName = keyof typeof PeerId;
