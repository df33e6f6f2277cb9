/**
 * One cold run of the sandbox benchmark's large backtest outside the sandbox, in a fresh Node
 * process: `node build/bench/sandbox/cold-run.js plain|engine BARS FAST SLOW`. It builds the
 * synthetic bars, then times one call of the hand-written loop (`plain`, plain-baseline.ts) or of
 * the runner engine without an isolate (`engine`, plain-engine.ts), and prints one JSON line:
 * `{"ms": ..., "finalEquity": ..., "fills": ...}`.
 *
 * A fresh process is what a user who runs a strategy as plain JavaScript in plain Node pays: V8
 * compiles and optimizes the loop while it runs, as it does for every sandboxed run in its fresh
 * isolate. Module loading, building the bars and loading Node's TypeScript stripper are outside
 * the timed section.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { toStrategyJob } from '../../services/sandbox/backtest';
import { prepareStrategyScript } from '../../services/sandbox/compile';
import { DEFAULT_CASH, DEFAULT_COMMISSION } from '../../services/sandbox/limits';
import { runPlainSmaCrossover } from './plain-baseline';
import { runEngineInPlainNode } from './plain-engine';
import { randomWalkBars } from './synthetic-bars';

export type ColdMode = 'plain' | 'engine';

export interface ColdRunReport {
  ms: number;
  finalEquity: number;
  fills: number;
}

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');

function main(): void {
  const [mode, barText, fastText, slowText] = process.argv.slice(2);
  const barCount = Number(barText);
  const fast = Number(fastText);
  const slow = Number(slowText);
  if ((mode !== 'plain' && mode !== 'engine') || !(barCount > 0) || !(fast > 0) || !(slow > fast)) {
    throw new Error(`usage: cold-run.js plain|engine BARS FAST SLOW, got ${process.argv.slice(2).join(' ')}`);
  }
  const bars = randomWalkBars(barCount);

  let report: ColdRunReport;
  if (mode === 'plain') {
    const started = performance.now();
    const result = runPlainSmaCrossover(bars, fast, slow, DEFAULT_CASH, DEFAULT_COMMISSION);
    const ms = performance.now() - started;
    report = { ms, finalEquity: result.metrics.final_equity, fills: result.fills.length };
  } else {
    const source = readFileSync(path.join(REPO_ROOT, 'examples', 'sma-crossover.ts'), 'utf8');
    const job = toStrategyJob({ source, filename: 'sma-crossover.ts', bars, params: { fast, slow } });
    // Node's TypeScript stripper takes about 27 ms to load on its first call. A sandbox worker
    // pays that once in its life, not per run, so it is loaded here before the timed section.
    prepareStrategyScript('const loaded: boolean = true;', 'stripper-warm-up.ts');
    const started = performance.now();
    const metrics = runEngineInPlainNode(job);
    const ms = performance.now() - started;
    report = { ms, finalEquity: metrics.final_equity, fills: metrics.fills };
  }
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

main();
