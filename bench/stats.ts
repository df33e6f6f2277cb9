/** Small statistics helpers for the benchmarks: percentiles over samples in microseconds. */

export function percentile(sorted: number[], fraction: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1));
  return sorted[index];
}

export interface LatencySummary {
  p50: number;
  p99: number;
  perSecond: number;
}

/** Summarises per-message latencies (µs) and the wall time the whole series took (ms). */
export function summarise(latenciesUs: number[], wallMs: number): LatencySummary {
  const sorted = [...latenciesUs].sort((a, b) => a - b);
  return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), perSecond: (latenciesUs.length / wallMs) * 1000 };
}

export function median(values: number[]): number {
  return percentile([...values].sort((a, b) => a - b), 0.5);
}

export function nowUs(): number {
  return Number(process.hrtime.bigint()) / 1000;
}
