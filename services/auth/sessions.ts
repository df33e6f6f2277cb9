/**
 * In-memory session store. A session token is 32 random bytes (base64url, 43 characters) that
 * the caller receives once. The store keeps only its SHA-256, so a memory dump of this process
 * yields no usable token. Sessions end when the auth process stops.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_TOKEN_BYTES = 32;
/** base64url of 32 bytes, without padding. */
export const SESSION_TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;
export const DEFAULT_SESSION_LIFETIME_MS = 8 * 60 * 60 * 1000;
/** Maximum live sessions; creating one more ends the session that expires first. */
export const MAX_SESSIONS = 32;

interface SessionEntry {
  tokenHash: Buffer;
  /** Epoch milliseconds. */
  expiresAt: number;
}

export interface IssuedSession {
  session: string;
  expiresAt: number;
}

function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export class SessionStore {
  private entries: SessionEntry[] = [];

  constructor(
    private readonly lifetimeMs: number,
    private readonly now: () => number,
  ) {}

  issue(): IssuedSession {
    this.removeExpired();
    if (this.entries.length >= MAX_SESSIONS) {
      this.entries.sort((a, b) => a.expiresAt - b.expiresAt);
      this.entries.shift();
    }

    const tokenBytes = randomBytes(SESSION_TOKEN_BYTES);
    const session = tokenBytes.toString('base64url');
    // NOTE: the token string stays in the V8 heap until collected; only the byte copy can be wiped.
    tokenBytes.fill(0);

    const expiresAt = this.now() + this.lifetimeMs;
    this.entries.push({ tokenHash: hashToken(session), expiresAt });
    return { session, expiresAt };
  }

  /** Returns the expiry of a live session, or null. */
  find(token: string): number | null {
    const index = this.indexOf(token);
    return index === -1 ? null : this.entries[index].expiresAt;
  }

  /** Ends a live session; returns false if the token matched none. */
  end(token: string): boolean {
    const index = this.indexOf(token);
    if (index === -1) return false;
    this.entries.splice(index, 1);
    return true;
  }

  /** Ends every session and returns how many were live. */
  endAll(): number {
    this.removeExpired();
    const ended = this.entries.length;
    this.entries = [];
    return ended;
  }

  /**
   * Compares the token's hash with every stored hash, without stopping at a match, so the time
   * taken does not depend on which entry matched or how many leading bytes agree.
   */
  private indexOf(token: string): number {
    this.removeExpired();
    const candidate = hashToken(token);
    let found = -1;
    for (let i = 0; i < this.entries.length; i++) {
      if (timingSafeEqual(this.entries[i].tokenHash, candidate)) found = i;
    }
    return found;
  }

  private removeExpired(): void {
    const now = this.now();
    this.entries = this.entries.filter((entry) => entry.expiresAt > now);
  }
}
