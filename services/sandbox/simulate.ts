/**
 * Host-side accounting: turns the strategy's orders and the bars into fills and an equity curve.
 * The isolate's own view of cash and position is only a convenience for the strategy; this is
 * the result that counts.
 *
 * Rules (long/flat only, market orders):
 * - An order placed while the strategy handles bar t fills at the open of bar t + 1, in the order
 *   the orders were placed. An order placed on the last bar never fills.
 * - `quantity` orders trade that many units (fractions allowed); `targetPercent` orders trade
 *   toward holding `fraction * equity / open` units, with equity valued at that same open.
 * - Definition choice: no short selling and no leverage. A sell larger than the position sells
 *   the whole position; a buy larger than the cash can pay (with commission) buys what the cash
 *   pays for and leaves cash at exactly 0. An order that would trade nothing creates no fill.
 * - Definition choice: a targetPercent trade whose notional is at most 1e-9 of equity is rounding
 *   noise (re-targeting an unchanged fraction), so it creates no fill.
 * - Commission is `commission * qty * price`, paid in cash on both buys and sells.
 * - Equity is `cash + position * close` at every bar's close; a position still open at the end
 *   stays open and is valued at the last close.
 *
 * runner-source.ts mirrors these formulas inside the isolate; keep both in step.
 */
import type { Bars, Fill, SimulationOptions, Simulation, StrategyOrder } from './types';

const TARGET_NOISE = 1e-9;

interface Account {
  cash: number;
  position: number;
  commission: number;
}

/** Applies one order at `price`; returns the fill, or null when the order trades nothing. */
function applyOrder(account: Account, order: StrategyOrder, bar: number, time: number, price: number): Fill | null {
  let qty: number;
  if (order.kind === 'quantity') {
    qty = order.value;
  } else {
    const equity = account.cash + account.position * price;
    qty = (order.value * equity) / price - account.position;
    if (Math.abs(qty) * price <= TARGET_NOISE * Math.abs(equity)) return null;
  }

  if (qty > 0) {
    const affordable = account.cash / (price * (1 + account.commission));
    if (!(affordable > 0)) return null;
    if (qty >= affordable) {
      qty = affordable;
      account.cash = 0;
    } else {
      const notional = qty * price;
      account.cash = account.cash - (notional + notional * account.commission);
    }
    account.position = account.position + qty;
    return { bar, time, side: 'buy', qty, price, commission: qty * price * account.commission };
  }

  if (qty < 0) {
    if (!(account.position > 0)) return null;
    let sold = -qty;
    if (sold >= account.position) {
      sold = account.position;
      account.position = 0;
    } else {
      account.position = account.position - sold;
    }
    const notional = sold * price;
    account.cash = account.cash + (notional - notional * account.commission);
    return { bar, time, side: 'sell', qty: sold, price, commission: notional * account.commission };
  }

  return null;
}

/**
 * The host's account over one run, advanced bar by bar: fills, the close-marked equity curve,
 * the position and cash, and the number of bars that end holding a position. Orders can be
 * added while bars are simulated, as long as every order that fills on a bar is added before
 * that bar is simulated (rederivation.ts adds them as the isolate reports them).
 *
 * No per-bar position array is kept, because filling a fresh 8 MB array for 1,000,000 bars took
 * about 6 ms, against 0.4 ms for refilling it (page faults; Node 24.21, 2-core AMD EPYC).
 */
export class Ledger {
  private curve: Float64Array | null = null;
  readonly fills: Fill[] = [];
  private readonly account: Account;
  private readonly added: StrategyOrder[] = [];
  /** Index in `orders` of the next order to fill. */
  private next = 0;
  private exposedBars = 0;
  /** Number of bars simulated so far. */
  private simulated = 0;

  constructor(
    private readonly bars: Pick<Bars, 'time' | 'open' | 'close'>,
    options: SimulationOptions,
  ) {
    this.account = { cash: options.cash, position: 0, commission: options.commission };
  }

  /**
   * The close-marked equity of each bar, valid for the bars simulated so far. It is allocated on
   * first use, so that a worker can copy the bars into the isolate first: the copies then reuse
   * memory that the previous run freed, instead of fresh pages (page faults).
   */
  get equity(): Float64Array {
    this.curve ??= new Float64Array(this.bars.close.length);
    return this.curve;
  }

  /** The orders added so far, in bar order. */
  get orders(): readonly StrategyOrder[] {
    return this.added;
  }

  /** Number of bars simulated so far. */
  get simulatedBars(): number {
    return this.simulated;
  }

  /** Appends `orders`, sorted by bar. None may fill on a bar that was already simulated. */
  addOrders(orders: readonly StrategyOrder[]): void {
    for (const order of orders) {
      const last = this.added.length > 0 ? this.added[this.added.length - 1].bar : 0;
      if (!Number.isInteger(order.bar) || order.bar < last) throw new RangeError(`ledger: order on bar ${order.bar} is out of bar order`);
      // An order placed on bar b fills while bar b + 1 is simulated.
      if (order.bar + 1 < this.simulated) throw new RangeError(`ledger: order on bar ${order.bar} arrived after bar ${this.simulated - 1} was simulated`);
      this.added.push(order);
    }
  }

  /** Simulates the bars from the first one not yet simulated up to `toBar` - 1. */
  advanceTo(toBar: number): void {
    const { time, open, close } = this.bars;
    const { account, added: orders, equity } = this;
    const end = Math.min(toBar, close.length);
    let next = this.next;
    let exposedBars = this.exposedBars;
    // The bar of the next order to fill, hoisted so that most bars cost one comparison.
    let nextOrderBar = next < orders.length ? orders[next].bar : Infinity;

    for (let t = this.simulated; t < end; t++) {
      // Orders placed on bar t - 1 (or earlier, which the runner never produces) fill at this open.
      while (nextOrderBar < t) {
        const fill = applyOrder(account, orders[next], t, time[t], open[t]);
        if (fill !== null) this.fills.push(fill);
        next++;
        nextOrderBar = next < orders.length ? orders[next].bar : Infinity;
      }
      equity[t] = account.cash + account.position * close[t];
      if (account.position !== 0) exposedBars++;
    }

    this.next = next;
    this.exposedBars = exposedBars;
    if (end > this.simulated) this.simulated = end;
  }

  /** Returns the simulation of every bar, simulating what is left first. */
  finish(): Simulation {
    this.advanceTo(this.bars.close.length);
    return { fills: this.fills, equity: this.equity, finalPosition: this.account.position, exposedBars: this.exposedBars, cash: this.account.cash };
  }
}

/**
 * Simulates `orders` (sorted by bar, as the runner records them) over `bars`. Returns the fills,
 * the close-marked equity, the final position and cash, and the number of bars that end holding
 * a position.
 */
export function simulate(bars: Bars, orders: readonly StrategyOrder[], options: SimulationOptions): Simulation {
  const ledger = new Ledger(bars, options);
  ledger.addOrders(orders);
  return ledger.finish();
}
