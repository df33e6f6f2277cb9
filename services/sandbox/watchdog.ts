/**
 * The watchdog of one strategy isolate: it enforces the CPU and wall-clock limits, keeps the
 * last bar index the runner reported, maps an error from a call into the isolate to the limit or
 * failure it stands for, and declares the isolate lost when disposing it does not end the run.
 */
import type ivm from 'isolated-vm';
import { BacktestrError } from '../../protocol/errors';
import { asyncStrategyError, errorFields } from './isolate-errors';
import { limitError, type SandboxLimits } from './limits';

/** Messages of isolated-vm 7.0.1 that tell a limit apart from a failure of the run itself. */
const IVM_TIMEOUT_MESSAGE = 'Script execution timed out.';
const IVM_MEMORY_MESSAGE_PART = 'memory limit';

/** How often the CPU time of the isolate is sampled, in ms. */
const CPU_POLL_INTERVAL_MS = 10;

/** Extra time the backstop timer grants after the wall-clock limit before disposing, in ms. */
const BACKSTOP_GRACE_MS = 200;

/** Time allowed for reading the bar index after a timeout, in ms. */
const PROGRESS_TIMEOUT_MS = 100;

/**
 * Time a run may take to settle after the watchdog disposed its isolate, in ms. isolated-vm
 * reads an unhandled rejection's `message`, `stack` and `name` after the call's timeout has
 * ended; disposing interrupts only the first of those reads, so a value whose getters or proxy
 * traps loop keeps the isolate's thread busy for good (isolated-vm 7.0.1).
 */
const LOST_ISOLATE_GRACE_MS = 1000;

/** Why a run's isolate was lost: isolated-vm's catastrophic error, or a dispose that did not end it. */
export type LostIsolateReason = 'catastrophic-error' | 'dispose-ignored';

export class Watchdog {
  private readonly startedAt = performance.now();
  private readonly cpuLimitNs: bigint;
  private reason: 'cpu' | 'time' | 'memory' | null = null;
  private reportedBar = -1;
  private poller: NodeJS.Timeout | null = null;
  private backstop: NodeJS.Timeout | null = null;
  private lostTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private rejectLost: (error: BacktestrError) => void = () => undefined;
  /** Why the isolate was lost, or null while it is not. */
  lostReason: LostIsolateReason | null = null;
  /**
   * Rejects with the run's limit error when the isolate is lost: isolated-vm reported a
   * catastrophic error for it, or the run did not settle within LOST_ISOLATE_GRACE_MS after
   * the watchdog disposed it. Never settles once stop() has run.
   */
  readonly lost: Promise<never>;

  /**
   * Starts watching `isolate`. CPU time already spent (preparing the runner in a spare isolate)
   * does not count against the limit.
   */
  constructor(
    private readonly isolate: ivm.Isolate,
    private readonly limits: SandboxLimits,
    private readonly barCount: number,
    catastrophe: Promise<string>,
  ) {
    this.lost = new Promise<never>((_resolve, reject) => {
      this.rejectLost = reject;
    });
    void catastrophe.then((message) => {
      // V8 reports a failed allocation as out-of-memory; isolated-vm's other catastrophic
      // error, "Script failed to terminate", follows a timeout.
      this.reason ??= message.includes('out-of-memory') ? 'memory' : 'time';
      this.declareLost('catastrophic-error');
    });
    this.cpuLimitNs = isolate.cpuTime + BigInt(limits.cpuTimeMs) * 1_000_000n;
    this.poller = setInterval(() => {
      if (!this.isolate.isDisposed && this.isolate.cpuTime > this.cpuLimitNs) this.stopIsolate('cpu');
    }, CPU_POLL_INTERVAL_MS);
    this.backstop = setTimeout(() => this.stopIsolate('time'), limits.timeoutMs + BACKSTOP_GRACE_MS);
  }

  /**
   * The host end of the runner's progress callback. It keeps one number and returns nothing, so
   * strategy code could at worst make a limit message name a wrong bar, if it ever reached it.
   */
  readonly recordProgress = (bar: unknown): void => {
    if (typeof bar === 'number' && Number.isInteger(bar) && bar > this.reportedBar && bar < this.barCount) this.reportedBar = bar;
  };

  /** Wall-clock time left for the next call into the isolate, in ms (at least 1). */
  remainingMs(): number {
    return Math.max(1, Math.ceil(this.limits.timeoutMs - (performance.now() - this.startedAt)));
  }

  stop(): void {
    this.stopped = true;
    if (this.poller !== null) clearInterval(this.poller);
    if (this.backstop !== null) clearTimeout(this.backstop);
    if (this.lostTimer !== null) clearTimeout(this.lostTimer);
    this.poller = null;
    this.backstop = null;
    this.lostTimer = null;
  }

  private stopIsolate(reason: 'cpu' | 'time'): void {
    if (this.isolate.isDisposed) return;
    this.reason = reason;
    this.isolate.dispose();
    this.lostTimer = setTimeout(() => this.declareLost('dispose-ignored'), LOST_ISOLATE_GRACE_MS);
  }

  private declareLost(reason: LostIsolateReason): void {
    if (this.stopped || this.lostReason !== null) return;
    this.lostReason = reason;
    this.rejectLost(this.reportedLimit(this.reason ?? 'time'));
  }

  /**
   * Maps an error thrown by a call into the isolate to the limit it stands for. Any other error
   * after the strategy started comes from strategy code, because the runner catches everything
   * in its own calls: a throw that escaped the wrapper or a failure isolated-vm reports after
   * the call.
   */
  async explain(error: unknown, context: ivm.Context | null, strategyStarted: boolean, filename: string): Promise<BacktestrError> {
    if (this.reason !== null) return this.reportedLimit(this.reason);
    if (error instanceof BacktestrError) return error;

    const message = errorFields(error)?.message ?? '';
    if (message === IVM_TIMEOUT_MESSAGE) {
      const exact = await this.readProgress(context);
      return exact >= 0 ? limitError('time', this.limits, exact) : this.reportedLimit('time');
    }
    if (message.includes(IVM_MEMORY_MESSAGE_PART) || this.isolate.isDisposed) return this.reportedLimit('memory');
    if (strategyStarted) return asyncStrategyError(error, filename);
    return new BacktestrError('E_INTERNAL', 'strategy isolate failed', {}, { cause: error });
  }

  /** The limit error for a run whose exact bar is gone: it names the last bar reported. */
  private reportedLimit(limit: 'cpu' | 'time' | 'memory'): BacktestrError {
    return limitError(limit, this.limits, this.reportedBar, this.reportedBar >= 0 ? 'at-least' : 'exact');
  }

  /** Returns the bar index the runner reached, or -1 when the isolate cannot tell any more. */
  private async readProgress(context: ivm.Context | null): Promise<number> {
    if (context === null || this.isolate.isDisposed) return -1;
    try {
      const bar: unknown = await context.evalClosure('return __backtestrProgress()', [], { timeout: PROGRESS_TIMEOUT_MS, result: { copy: true } });
      return typeof bar === 'number' && Number.isInteger(bar) && bar >= 0 && bar < this.barCount ? bar : -1;
    } catch {
      // Strategy microtasks may still be spinning after the timeout, so the exact bar stays
      // unknown and the last reported one is used instead.
      return -1;
    }
  }
}
