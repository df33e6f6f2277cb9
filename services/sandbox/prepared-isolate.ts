/**
 * Creates strategy isolates with the runner installed and the intrinsics frozen, ready for one
 * run each. A worker thread prepares its next isolate right after it has replied to a run, so
 * the 5 ms or so of isolate creation and freezing is off the critical path of the next run.
 * No state is shared between runs, because every run still gets a fresh isolate.
 *
 * Preparation uses isolated-vm's synchronous calls. With the asynchronous ones, a piscina worker
 * that had gone idle after its reply resumed the preparation only when its next task arrived
 * (isolated-vm 7.0.1, Node 24.21), so the next run waited 2-5 ms for its spare isolate.
 *
 * NOTE: an isolated-vm snapshot of the prepared heap would cut the preparation itself, but with
 * isolated-vm 7.0.1 on Node 24.21 a snapshot whose intrinsics are frozen aborts the process in
 * V8's context bootstrapping (`Object::AddDataProperty ... IsJust()` check failed).
 */
import { writeSync } from 'node:fs';
import ivm from 'isolated-vm';
import { RUNNER_FILENAME, RUNNER_SOURCE } from './runner-source';

/** Time allowed for installing the runner, which is trusted code, in ms. */
const RUNNER_INSTALL_TIMEOUT_MS = 2000;

export interface PreparedIsolate {
  readonly isolate: ivm.Isolate;
  readonly context: ivm.Context;
  readonly memoryLimitMb: number;
  /**
   * Resolves with isolated-vm's message when V8 has lost control of this isolate (a
   * catastrophic error such as "Catastrophic out-of-memory error"); never settles otherwise.
   */
  readonly catastrophe: Promise<string>;
}

/**
 * Creates an isolate with a `memoryLimitMb` heap limit and installs the hardened runner.
 *
 * isolated-vm calls onCatastrophicError when V8 has lost control of an isolate, for example when
 * a hash table that doubles its size fails to allocate near the memory limit. Its documentation
 * asks the embedder to stop serving and end the process. The isolate's thread then sleeps for
 * good inside isolated-vm, so the error is passed to the run that owns the isolate (watchdog.ts),
 * which fails with a limit error, instead of aborting every run of the process at once.
 * NOTE: each such isolate keeps its heap and one sleeping native thread until the process ends,
 * so the process should be restarted once it is idle.
 */
export function prepareIsolate(memoryLimitMb: number): PreparedIsolate {
  let reportCatastrophe: (message: string) => void = () => undefined;
  const catastrophe = new Promise<string>((resolve) => {
    reportCatastrophe = resolve;
  });
  const onCatastrophicError = (message: string): void => {
    writeSync(2, `sandbox: isolated-vm catastrophic error in a strategy isolate: ${message}\n`);
    reportCatastrophe(message);
  };
  const isolate = new ivm.Isolate({ memoryLimit: memoryLimitMb, onCatastrophicError });
  try {
    const context = isolate.createContextSync();
    const runner = isolate.compileScriptSync(RUNNER_SOURCE, { filename: RUNNER_FILENAME });
    runner.runSync(context, { timeout: RUNNER_INSTALL_TIMEOUT_MS, release: true });
    return { isolate, context, memoryLimitMb, catastrophe };
  } catch (error) {
    isolate.dispose();
    throw error;
  }
}

/**
 * One prepared isolate kept aside per thread. `take` hands it out when its memory limit fits the
 * run and prepares a fresh one otherwise. `refill` prepares the next one.
 */
export class SpareIsolate {
  private spare: PreparedIsolate | null = null;

  constructor(private readonly onError: (message: string) => void) {}

  take(memoryLimitMb: number): PreparedIsolate {
    const prepared = this.spare;
    this.spare = null;
    if (prepared !== null && prepared.memoryLimitMb === memoryLimitMb && !prepared.isolate.isDisposed) return prepared;
    if (prepared !== null && !prepared.isolate.isDisposed) prepared.isolate.dispose();
    return prepareIsolate(memoryLimitMb);
  }

  /** Prepares the next spare isolate now, blocking this thread for the few ms it takes. */
  refill(memoryLimitMb: number): void {
    if (this.spare !== null) return;
    try {
      this.spare = prepareIsolate(memoryLimitMb);
    } catch (error) {
      // The next run then prepares its own isolate and reports any failure to its caller.
      this.onError(`preparing a spare isolate failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}
