/**
 * Big-endian byte writer and reader for the keyring and vault file formats. The reader never
 * reads past the end: a short or malformed file raises the error that the caller's `malformed`
 * function builds, so each format reports E_INTEGRITY naming its own file.
 */
import { timingSafeEqual } from 'node:crypto';

export class ByteWriter {
  private readonly chunks: Uint8Array[] = [];
  private length = 0;

  bytes(value: Uint8Array): this {
    this.chunks.push(value);
    this.length += value.length;
    return this;
  }

  u8(value: number): this {
    return this.fixed(1, (view) => view.setUint8(0, value));
  }

  u16(value: number): this {
    return this.fixed(2, (view) => view.setUint16(0, value));
  }

  u32(value: number): this {
    return this.fixed(4, (view) => view.setUint32(0, value));
  }

  /** Writes a safe integer as 8 bytes. */
  u64(value: number): this {
    return this.fixed(8, (view) => view.setBigUint64(0, BigInt(value)));
  }

  /** Writes a UTF-8 string after its byte length (u8 or u16). */
  string(value: string, lengthBytes: 1 | 2): this {
    const encoded = new TextEncoder().encode(value);
    if (lengthBytes === 1) this.u8(encoded.length);
    else this.u16(encoded.length);
    return this.bytes(encoded);
  }

  /** Concatenates everything written so far into one new buffer. */
  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let offset = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }

  private fixed(size: number, write: (view: DataView) => void): this {
    const chunk = new Uint8Array(size);
    write(new DataView(chunk.buffer));
    return this.bytes(chunk);
  }
}

export class ByteReader {
  private offset = 0;
  private readonly view: DataView;

  constructor(
    private readonly data: Uint8Array,
    private readonly malformed: (reason: string) => Error,
  ) {
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  get position(): number {
    return this.offset;
  }

  get remaining(): number {
    return this.data.length - this.offset;
  }

  /** Returns a copy, so that wiping the file buffer never wipes a parsed field and vice versa. */
  bytes(length: number): Uint8Array {
    this.need(length);
    const out = this.data.slice(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }

  u8(): number {
    this.need(1);
    return this.view.getUint8(this.offset++);
  }

  u16(): number {
    this.need(2);
    const value = this.view.getUint16(this.offset);
    this.offset += 2;
    return value;
  }

  u32(): number {
    this.need(4);
    const value = this.view.getUint32(this.offset);
    this.offset += 4;
    return value;
  }

  u64(): number {
    this.need(8);
    const value = this.view.getBigUint64(this.offset);
    this.offset += 8;
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw this.malformed('counter exceeds 2^53 - 1');
    return Number(value);
  }

  /** Reads a length-prefixed string and rejects bytes that are not valid UTF-8. */
  string(lengthBytes: 1 | 2): string {
    const length = lengthBytes === 1 ? this.u8() : this.u16();
    const raw = this.bytes(length);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(raw);
    } catch (error) {
      throw this.malformed(`invalid UTF-8 string at byte ${this.offset - length}: ${(error as Error).name}`);
    }
  }

  /** Raises unless every byte was consumed, so that appended bytes are never silently ignored. */
  end(): void {
    if (this.remaining !== 0) throw this.malformed(`${this.remaining} unexpected trailing bytes`);
  }

  private need(length: number): void {
    if (length > this.remaining) {
      throw this.malformed(`truncated: needed ${length} bytes at offset ${this.offset}, ${this.remaining} left`);
    }
  }
}

/** Compares two byte strings in time that depends only on their lengths. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function fromHex(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/**
 * Overwrites buffers with zeros.
 * NOTE: JavaScript gives no guarantee that no other copy exists: the garbage collector may have
 * moved a buffer, and strings (such as a password) are immutable and cannot be wiped at all.
 * Wiping shortens the time a secret stays in memory; it does not erase every trace.
 */
export function wipe(...buffers: (Uint8Array | undefined)[]): void {
  for (const buffer of buffers) buffer?.fill(0);
}
