/**
 * A diagnostic figure of the sandbox benchmark, not its baseline: the same strategy source, the
 * same runner engine with the same `ctx` API, and the same host accounting and metrics, run in
 * this realm with no isolate. The runner is installed with `harden` false on a stand-in global
 * object, so it neither freezes this process's intrinsics nor replaces its Date and Math.random.
 *
 * Compared with a sandboxed run, this leaves out the isolate and its preparation, freezing,
 * copying the bars in and the result out, the thread hop, the result's schema checks and the
 * cross-check of the runner's account. Compared with the hand-written loop (plain-baseline.ts),
 * it shows what the runner engine's `ctx` API costs per bar.
 */
import { prepareStrategyScript } from '../../services/sandbox/compile';
import type { StrategyJob } from '../../services/sandbox/isolate-run';
import { computeMetrics } from '../../services/sandbox/metrics';
import { RUNNER_BODY } from '../../services/sandbox/runner-source';
import { simulate } from '../../services/sandbox/simulate';
import { ORDER_KIND_QUANTITY, type Metrics, type StrategyOrder } from '../../services/sandbox/types';

type Hook = (...args: unknown[]) => unknown;

interface RunnerOk {
  status: 'ok';
  orders: Float64Array;
}

/** Runs `job` as plain JavaScript in this thread and returns its final metrics. */
export function runEngineInPlainNode(job: StrategyJob): Metrics {
  const hooks: Record<string, Hook> = {};
  new Function('global', 'harden', RUNNER_BODY)(hooks, false);
  const { bars } = job;
  const settings = { cash: job.cash, commission: job.commission, maxOrders: job.limits.maxOrders, maxLogLines: job.limits.maxLogLines, seed: 1 };
  hooks.__backtestrSetup(bars.time, bars.open, bars.high, bars.low, bars.close, bars.volume, job.params, settings, () => undefined);

  const script = prepareStrategyScript(job.source, job.filename);
  new Function('__backtestrRegister', '__backtestrLoadFailed', script.wrapped)(hooks.__backtestrRegister, hooks.__backtestrLoadFailed);
  const raw = hooks.__backtestrRun() as RunnerOk;
  if (raw.status !== 'ok') throw new Error(`plain baseline run failed: ${JSON.stringify(raw)}`);

  const orders: StrategyOrder[] = [];
  for (let k = 0; k < raw.orders.length; k += 3) {
    orders.push({ bar: raw.orders[k], kind: raw.orders[k + 1] === ORDER_KIND_QUANTITY ? 'quantity' : 'targetPercent', value: raw.orders[k + 2] });
  }
  const simulation = simulate(bars, orders, { cash: job.cash, commission: job.commission });
  return computeMetrics({ time: bars.time, equity: simulation.equity, exposedBars: simulation.exposedBars, initialCash: job.cash, fillCount: simulation.fills.length });
}
