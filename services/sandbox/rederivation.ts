/**
 * The host's re-derivation of one run: fills, equity curve and metrics, computed from the
 * strategy's orders and the host's own copy of the bars while the strategy still runs.
 *
 * The runner reports the bar it has reached with the orders placed since its previous report
 * (reportProgress in runner-source.ts). Every order placed before the reported bar is then known,
 * so the host simulates the bars before it on its own thread while the isolate's thread runs on.
 * On a machine with a spare core, most of the host's work is done by the time the strategy's
 * loop ends. Nothing is simulated before the bars are checked (bar-check.ts).
 *
 * The reports are only a head start. The runner's final result carries every order again, and
 * `finish` checks that the reported orders are an exact prefix of them before it computes the
 * rest. A report that came late or not at all changes nothing, and one that differs from the
 * final orders rejects the run.
 */
import { BacktestrError } from '../../protocol/errors';
import type { StrategyJob } from './isolate-run';
import { CurveStatistics, metricsFromSummary } from './metrics';
import { checkBacktestResult, crossCheckAccount } from './result-check';
import { isFloat64Array, readOrders } from './runner-result';
import { Ledger } from './simulate';
import type { BacktestResult, StrategyOrder, StrategyOutput } from './types';

function mismatch(problem: string): BacktestrError {
  return new BacktestrError('E_RESULT_INVALID', `strategy result rejected: ${problem}`, { reason: 'order-mismatch' });
}

function invalidReport(problem: string): BacktestrError {
  return new BacktestrError('E_RESULT_INVALID', `strategy runner sent an invalid progress report: ${problem}`, { reason: 'schema' });
}

/** Returns the index of the first order of `reported` that differs from the same order of `all`, or -1. */
function firstDifference(reported: readonly StrategyOrder[], all: readonly StrategyOrder[]): number {
  for (let k = 0; k < reported.length; k++) {
    const early = reported[k];
    const late = all[k];
    if (early.bar !== late.bar || early.kind !== late.kind || !Object.is(early.value, late.value)) return k;
  }
  return -1;
}

export class Rederivation {
  private readonly ledger: Ledger;
  private readonly statistics = new CurveStatistics();
  private readonly barCount: number;
  /** Bar of the last report: every order placed before it is in the ledger. */
  private reachedBar = 0;
  private barsChecked: boolean;
  private finished = false;
  /** The first invalid report, which `finish` raises. */
  private reportError: BacktestrError | null = null;

  /** Starts the re-derivation of `job`. With `barsChecked` false, nothing is simulated before markBarsChecked. */
  constructor(
    private readonly job: StrategyJob,
    options: { barsChecked: boolean },
  ) {
    this.barCount = job.bars.time.length;
    this.barsChecked = options.barsChecked;
    this.ledger = new Ledger(job.bars, { cash: job.cash, commission: job.commission });
  }

  /**
   * Receives one progress report: the runner reached bar `bar`, and `orders` contains the triples
   * of the orders placed since its previous report. Reports arrive in the order they were sent.
   * An invalid report is kept for `finish` to raise, because isolated-vm discards what this
   * callback throws.
   */
  readonly receive = (bar: unknown, orders: unknown): void => {
    if (this.finished || this.reportError !== null) return;
    try {
      if (typeof bar !== 'number' || !Number.isInteger(bar) || bar < this.reachedBar || bar >= this.barCount) throw invalidReport(`bar ${String(bar)} out of order`);
      if (!isFloat64Array(orders)) throw invalidReport('orders are not a Float64Array');
      // A report sent on bar t carries orders of bars up to t only. The previous report stated
      // that every order before its bar was in it, so later orders must come on or after that bar.
      // Checking this here keeps the ledger from raising a RangeError for bars it has simulated.
      const received = readOrders(orders, bar + 1, { firstBar: this.reachedBar, firstIndex: this.ledger.orders.length });
      this.ledger.addOrders(received);
      this.reachedBar = bar;
      if (this.barsChecked) this.catchUp();
    } catch (error) {
      this.reportError = error instanceof BacktestrError ? error : new BacktestrError('E_INTERNAL', 'progress report failed', {}, { cause: error });
    }
  };

  /** Records that the bars passed their check and simulates the bars reported so far. */
  markBarsChecked(): void {
    this.barsChecked = true;
    this.catchUp();
  }

  /** Simulates every bar before the reached bar. Orders of bar t - 1 fill on bar t, so all are known. */
  private catchUp(): void {
    const from = this.ledger.simulatedBars;
    this.ledger.advanceTo(this.reachedBar);
    this.statistics.add(this.ledger.equity, from, this.ledger.simulatedBars);
  }

  /**
   * Completes the re-derivation from the runner's final `output` and returns the checked result.
   * Raises E_RESULT_INVALID when a report was invalid or differs from the final orders, when the
   * runner's account differs from the host's (crossCheckAccount), or when the result fails
   * checkBacktestResult.
   */
  finish(output: StrategyOutput): BacktestResult {
    if (!this.barsChecked) throw new BacktestrError('E_INTERNAL', 'result requested before the bars were checked');
    this.finished = true;
    if (this.reportError !== null) throw this.reportError;

    // Until now the ledger contains exactly the orders of the progress reports.
    const reported = this.ledger.orders.length;
    const { orders } = output;
    if (orders.length < reported) throw mismatch(`the runner reported ${reported} orders but returned ${orders.length}`);
    const differing = firstDifference(this.ledger.orders, orders);
    if (differing >= 0) throw mismatch(`order ${differing} differs from its progress report`);
    const rest = orders.slice(reported);
    // Every order before the last reported bar was in a report, so the rest come on or after it.
    if (rest.length > 0 && rest[0].bar < this.reachedBar) throw mismatch(`order ${reported} on bar ${rest[0].bar} is missing from the progress report of bar ${this.reachedBar}`);
    this.ledger.addOrders(rest);

    const from = this.ledger.simulatedBars;
    const simulation = this.ledger.finish();
    this.statistics.add(simulation.equity, from, this.barCount);
    crossCheckAccount(simulation, output.account);
    const { job } = this;
    const metrics = metricsFromSummary(
      { time: job.bars.time, equity: simulation.equity, exposedBars: simulation.exposedBars, initialCash: job.cash, fillCount: simulation.fills.length },
      this.statistics.summarize(simulation.equity),
    );
    const result: BacktestResult = { bars: this.barCount, fills: simulation.fills, equity: simulation.equity, metrics, logs: output.logs };
    checkBacktestResult(result, this.barCount);
    return result;
  }
}
