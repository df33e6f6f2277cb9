/// <reference path="./strategy-api.d.ts" />
/**
 * Moving-average crossover: hold the instrument with all cash while the fast simple moving
 * average of closes is above the slow one, and stay flat otherwise. Both averages include the
 * current bar's close. No signal exists until `slow` bars have closed.
 *
 * Parameters: `fast` (default 50) and `slow` (default 200), in bars.
 */

const DEFAULT_FAST = 50;
const DEFAULT_SLOW = 200;

function init(ctx: StrategyContext): void {
  const fast = ctx.params.fast ?? DEFAULT_FAST;
  const slow = ctx.params.slow ?? DEFAULT_SLOW;
  if (!(fast >= 1 && slow > fast)) throw new RangeError(`expected 1 <= fast < slow, got fast=${fast} slow=${slow}`);
}

function onBar(ctx: StrategyContext): void {
  const fast = ctx.params.fast ?? DEFAULT_FAST;
  const slow = ctx.params.slow ?? DEFAULT_SLOW;

  const slowAverage = ctx.sma(slow);
  if (Number.isNaN(slowAverage)) return;

  const wantLong = ctx.sma(fast) > slowAverage;
  if (wantLong && ctx.position === 0) ctx.targetPercent(1);
  else if (!wantLong && ctx.position > 0) ctx.targetPercent(0);
}
