/**
 * Coalescing of repeated events. Each event type may write at most `maxPerType` lines per window,
 * and all types together at most `maxTotal`, so neither one noisy type nor many distinct types
 * can flood the disk. Events over the limit are dropped and counted. When a window ends, the
 * caller gets one summary per type that lost events.
 */

export interface RateLimits {
  windowMs: number;
  maxPerType: number;
  maxTotal: number;
}

export const DEFAULT_RATE_LIMITS: RateLimits = { windowMs: 1000, maxPerType: 20, maxTotal: 200 };

export interface DroppedSummary {
  eventType: string;
  dropped: number;
  /** Epoch milliseconds at which the window started. */
  windowStart: number;
  windowMs: number;
}

/** Distinct types tracked per window; further new types share OVERFLOW_TYPE so the map stays bounded. */
export const MAX_TYPES_PER_WINDOW = 1024;
export const OVERFLOW_TYPE = 'monitor.other_types';

interface TypeWindow {
  written: number;
  dropped: number;
}

export class EventRateLimiter {
  private windowStart = Number.NEGATIVE_INFINITY;
  private writtenTotal = 0;
  private readonly types = new Map<string, TypeWindow>();

  constructor(private readonly limits: RateLimits) {}

  /**
   * Ends the current window if `now` is past it and returns the summaries of what it dropped.
   * Call before `admit`, and whenever pending summaries should reach the log (tail, stop).
   */
  closeExpiredWindow(now: number): DroppedSummary[] {
    if (now < this.windowStart + this.limits.windowMs) return [];
    const summaries = this.closeWindow();
    this.windowStart = now;
    return summaries;
  }

  /** Ends the current window now, whatever its age, and returns the summaries of what it dropped. */
  closeWindow(): DroppedSummary[] {
    const summaries: DroppedSummary[] = [];
    for (const [eventType, window] of this.types) {
      if (window.dropped > 0) {
        summaries.push({ eventType, dropped: window.dropped, windowStart: this.windowStart, windowMs: this.limits.windowMs });
      }
    }
    this.types.clear();
    this.writtenTotal = 0;
    this.windowStart = Number.NEGATIVE_INFINITY;
    return summaries;
  }

  /** Returns whether an event of `eventType` may be written now, counting it either way. */
  admit(eventType: string): boolean {
    let key = eventType;
    if (!this.types.has(key) && this.types.size >= MAX_TYPES_PER_WINDOW) key = OVERFLOW_TYPE;

    let window = this.types.get(key);
    if (window === undefined) {
      window = { written: 0, dropped: 0 };
      this.types.set(key, window);
    }

    if (window.written >= this.limits.maxPerType || this.writtenTotal >= this.limits.maxTotal) {
      window.dropped++;
      return false;
    }
    window.written++;
    this.writtenTotal++;
    return true;
  }
}
