/**
 * Sandbox benchmarks, each printed beside a baseline measured in the same run (absolute numbers
 * move 30-100% between runs on a small shared machine, ratios much less):
 * - SMA crossover over 1,000,000 synthetic bars: sandboxed (result checks included) against the
 *   same strategy source, stripped to plain JavaScript, on the sandbox's runner engine without an
 *   isolate (plain-engine.ts), and against the strategy rewritten by hand as one plain loop
 *   (plain-baseline.ts). Both baselines run cold, one run per fresh Node process (cold-run.ts),
 *   as every sandboxed run compiles its strategy in a fresh isolate, and warm, in this process.
 *   The service serves a few untimed runs first, as a running service has; its first run after
 *   start is printed on its own line;
 * - isolate start-up: a prepared isolate (runner installed, intrinsics frozen) against a bare one;
 * - a batch of 100 short backtests on a 2-thread pool against the same 100 run one by one.
 *
 * Run with `node --no-node-snapshot build/bench/sandbox/run.js` after `npm run build`.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ivm from 'isolated-vm';
import pino from 'pino';
import { parse } from '../../protocol/schema';
import type { ServiceContext } from '../../services/runtime/types';
import { runBacktest, toStrategyJob } from '../../services/sandbox/backtest';
import { DEFAULT_CASH, DEFAULT_COMMISSION } from '../../services/sandbox/limits';
import { prepareIsolate } from '../../services/sandbox/prepared-isolate';
import { createSandboxService, runParamsSchema } from '../../services/sandbox/service';
import type { BacktestRequest, BacktestResult } from '../../services/sandbox/types';
import { median } from '../stats';
import type { ColdMode, ColdRunReport } from './cold-run';
import { runPlainSmaCrossover } from './plain-baseline';
import { runEngineInPlainNode } from './plain-engine';
import { randomWalkBars } from './synthetic-bars';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const SMA_SOURCE = readFileSync(path.join(REPO_ROOT, 'examples', 'sma-crossover.ts'), 'utf8');
const LARGE_BARS = 1_000_000;
const LARGE_REPETITIONS = 11;
/** Untimed runs after the first, so that every pool thread has served a large run before timing. */
const WARM_UP_RUNS = 3;
/** Pause before each timed in-process path, in ms (settle below). */
const SETTLE_MS = 50;
const LARGE_PARAMS = { fast: 50, slow: 200 };
const STARTUPS = 30;
const BATCH_RUNS = 100;
const SHORT_BARS = 2_520;
const THREADS = 2;

function row(label: string, value: string, baseline: string, ratio: string): string {
  return `${label.padEnd(58)} ${value.padStart(12)} ${baseline.padStart(12)} ${ratio.padStart(8)}`;
}

function quietContext(): ServiceContext {
  return {
    service: 'sandbox',
    profileDir: os.tmpdir(),
    stateDir: os.tmpdir(),
    installDir: path.resolve(__dirname, '..', '..'),
    log: pino({ level: 'silent' }),
    async call() {
      return null;
    },
    securityEvent(event) {
      throw new Error(`unexpected security event in a benchmark: ${event.type}`);
    },
  };
}

/** Runs the large backtest once outside the sandbox, in a fresh Node process (cold-run.ts). */
function coldRun(mode: ColdMode): ColdRunReport {
  const child = spawnSync(process.execPath, [path.join(__dirname, 'cold-run.js'), mode, String(LARGE_BARS), String(LARGE_PARAMS.fast), String(LARGE_PARAMS.slow)], {
    encoding: 'utf8',
  });
  if (child.status !== 0) throw new Error(`cold ${mode} run failed with status ${child.status}: ${child.stderr}`);
  return JSON.parse(child.stdout) as ColdRunReport;
}

/**
 * Waits a moment before a timed path, so that V8's concurrent garbage collection of the previous
 * path's garbage (each path leaves 8-48 MB) runs on the 2 cores before the timing, not during it.
 */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
}

async function timeMs<T>(action: () => Promise<T> | T): Promise<[number, T]> {
  const started = performance.now();
  const value = await action();
  return [performance.now() - started, value];
}

async function main(): Promise<void> {
  console.log(`BackTestr sandbox benchmarks, Node ${process.version}, ${process.arch}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown CPU'})`);
  console.log(row('figure', 'measured', 'baseline', 'ratio'));
  const ctx = quietContext();
  const service = createSandboxService({ threads: THREADS });
  await service.start!(ctx);
  const handle = (params: unknown): Promise<BacktestResult> => service.methods.run.handle(params, ctx) as Promise<BacktestResult>;

  try {
    // (a) One large backtest. The service receives its own parsed copy of the bars, made by the
    // runtime before `handle` runs, so that copy is made outside the timed section here too.
    // The paths run interleaved, so that a change of machine load hits all of them alike.
    const { fast, slow } = LARGE_PARAMS;
    const large: BacktestRequest = { source: SMA_SOURCE, filename: 'sma-crossover.ts', bars: randomWalkBars(LARGE_BARS), params: { fast, slow } };
    const samples = { plainCold: [] as number[], engineCold: [] as number[], plainWarm: [] as number[], engineWarm: [] as number[], inThread: [] as number[], pooled: [] as number[] };
    const [firstPooledMs] = await timeMs(() => handle(parse(runParamsSchema, large, 'params')));
    for (let i = 0; i < WARM_UP_RUNS; i++) await handle(parse(runParamsSchema, large, 'params'));
    let finalEquity = NaN;
    for (let i = 0; i < LARGE_REPETITIONS; i++) {
      const plainCold = coldRun('plain');
      const engineCold = coldRun('engine');
      await settle();
      const [plainWarm, plainResult] = await timeMs(() => runPlainSmaCrossover(large.bars, fast, slow, DEFAULT_CASH, DEFAULT_COMMISSION));
      const job = toStrategyJob(large);
      await settle();
      const [engineWarm, engineMetrics] = await timeMs(() => runEngineInPlainNode(job));
      await settle();
      const [inThread, inThreadResult] = await timeMs(() => runBacktest(large));
      const params = parse(runParamsSchema, large, 'params');
      await settle();
      const [pooled, pooledResult] = await timeMs(() => handle(params));

      const expected = plainResult.metrics.final_equity;
      const equities = [plainCold.finalEquity, engineCold.finalEquity, engineMetrics.final_equity, inThreadResult.metrics.final_equity, pooledResult.metrics.final_equity];
      const fillCounts = [plainCold.fills, engineCold.fills, engineMetrics.fills, inThreadResult.fills.length, pooledResult.fills.length];
      if (equities.some((value) => value !== expected) || fillCounts.some((count) => count !== plainResult.fills.length)) {
        throw new Error(`the runs disagree: final equity ${expected} and ${plainResult.fills.length} fills (plain loop), equities ${equities.join(', ')}, fills ${fillCounts.join(', ')}`);
      }
      finalEquity = expected;
      samples.plainCold.push(plainCold.ms);
      samples.engineCold.push(engineCold.ms);
      samples.plainWarm.push(plainWarm);
      samples.engineWarm.push(engineWarm);
      samples.inThread.push(inThread);
      samples.pooled.push(pooled);
    }
    const medians = Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, median(values)])) as Record<keyof typeof samples, number>;
    const versus = (label: string, value: number, baseline: number): void => console.log(row(label, value.toFixed(1), baseline.toFixed(1), (value / baseline).toFixed(2)));
    versus('1M-bar SMA, sandbox.run via pool vs engine, cold (ms)', medians.pooled, medians.engineCold);
    versus('1M-bar SMA, sandbox.run via pool vs engine, warm (ms)', medians.pooled, medians.engineWarm);
    versus('1M-bar SMA, first sandbox.run after start vs engine (ms)', firstPooledMs, medians.engineCold);
    versus('1M-bar SMA, sandbox in this thread vs engine, cold (ms)', medians.inThread, medians.engineCold);
    versus('1M-bar SMA, sandbox.run via pool vs plain loop, cold (ms)', medians.pooled, medians.plainCold);
    versus('1M-bar SMA, sandbox.run via pool vs plain loop, warm (ms)', medians.pooled, medians.plainWarm);
    versus('1M-bar SMA, engine unsandboxed vs plain loop, cold (ms)', medians.engineCold, medians.plainCold);
    console.log(row('1M-bar SMA, bars per second in the pool (M)', (LARGE_BARS / medians.pooled / 1000).toFixed(2), (LARGE_BARS / medians.plainCold / 1000).toFixed(2), ''));
    for (const [name, values] of Object.entries(samples)) console.log(`  ${name.padEnd(11)} ${values.map((value) => value.toFixed(1)).join(' ')}`);
    // Ratios within one repetition compare runs made moments apart, under about the same load.
    for (const [name, baseline] of [['plainCold', samples.plainCold], ['engineCold', samples.engineCold]] as const) {
      const ratios = samples.pooled.map((value, i) => value / baseline[i]).sort((a, b) => a - b);
      console.log(`  pooled / ${name} per repetition: median ${median(ratios).toFixed(2)}, range ${ratios[0].toFixed(2)}-${ratios[ratios.length - 1].toFixed(2)}`);
    }

    // (b) Isolate start-up: the runner installed and every intrinsic frozen, against a bare isolate.
    const preparedMs: number[] = [];
    const bareMs: number[] = [];
    for (let i = 0; i < STARTUPS; i++) {
      const [prepareTime, prepared] = await timeMs(() => prepareIsolate(512));
      prepared.isolate.dispose();
      preparedMs.push(prepareTime);
      const [bareTime, bare] = await timeMs(() => {
        const isolate = new ivm.Isolate({ memoryLimit: 512 });
        isolate.createContextSync();
        return isolate;
      });
      bare.dispose();
      bareMs.push(bareTime);
    }
    console.log(row('isolate start-up, prepared vs bare (ms)', median(preparedMs).toFixed(2), median(bareMs).toFixed(2), (median(preparedMs) / median(bareMs)).toFixed(2)));

    // (c) Throughput of short backtests: all at once on the pool against one at a time.
    const short: BacktestRequest = { source: SMA_SOURCE, filename: 'sma-crossover.ts', bars: randomWalkBars(SHORT_BARS, 7), params: { fast: 20, slow: 100 } };
    const batchParams = Array.from({ length: BATCH_RUNS }, () => parse(runParamsSchema, short, 'params'));
    const sequentialParams = Array.from({ length: BATCH_RUNS }, () => parse(runParamsSchema, short, 'params'));
    const [batchMs] = await timeMs(() => Promise.all(batchParams.map((params) => handle(params))));
    const [sequentialMs] = await timeMs(async () => {
      for (const params of sequentialParams) await handle(params);
    });
    const batchRate = (BATCH_RUNS / batchMs) * 1000;
    const sequentialRate = (BATCH_RUNS / sequentialMs) * 1000;
    console.log(row(`${BATCH_RUNS} x ${SHORT_BARS}-bar runs, batch vs one by one (runs/s)`, batchRate.toFixed(0), sequentialRate.toFixed(0), (batchRate / sequentialRate).toFixed(2)));

    console.log(`Final equity of the 1M-bar run: ${finalEquity.toFixed(2)} (identical in all six paths, fill counts too).`);
    console.log(`Medians of ${LARGE_REPETITIONS} large runs (after ${WARM_UP_RUNS + 1} untimed ones) and ${STARTUPS} start-ups; pool of ${THREADS} threads.`);
    console.log('Engine: the same strategy source, types stripped, on the runner engine without an isolate,');
    console.log('with the same accounting and metrics (plain-engine.ts): the strategy as plain JavaScript in');
    console.log('plain Node, and the baseline of the 1.3x target. Plain loop: the strategy rewritten by hand as');
    console.log('one JavaScript loop with the same fills, equity curve and metrics (plain-baseline.ts). Cold: one');
    console.log('run in a fresh Node process (cold-run.ts). Warm: in this process, where it has run before.');
  } finally {
    await service.stop!(ctx);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
