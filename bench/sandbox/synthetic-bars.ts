/** Synthetic daily bars for the sandbox benchmark: a seeded random walk, the same on every run. */
import type { Bars } from '../../services/sandbox/types';

const DAY_MS = 86_400_000;

/** Returns `count` bars of a random walk with 1% daily moves, from 1970-01-01, seeded. */
export function randomWalkBars(count: number, seed = 1): Bars {
  const bars: Bars = {
    time: new Float64Array(count),
    open: new Float64Array(count),
    high: new Float64Array(count),
    low: new Float64Array(count),
    close: new Float64Array(count),
    volume: new Float64Array(count),
  };
  // Park-Miller minimal standard generator: deterministic and enough for a price path.
  let state = seed;
  const next = (): number => {
    state = (state * 16_807) % 2_147_483_647;
    return state / 2_147_483_647;
  };
  let price = 100;
  for (let i = 0; i < count; i++) {
    const open = price;
    price *= 1 + (next() - 0.5) * 0.02;
    bars.time[i] = i * DAY_MS;
    bars.open[i] = open;
    bars.close[i] = price;
    bars.high[i] = Math.max(open, price) * (1 + next() * 0.005);
    bars.low[i] = Math.min(open, price) * (1 - next() * 0.005);
    bars.volume[i] = 1_000 + Math.floor(next() * 1_000);
  }
  return bars;
}
