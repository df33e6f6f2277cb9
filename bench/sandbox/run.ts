/**
 * Sandbox benchmarks, each printed beside a baseline measured in the same run (absolute numbers
 * move 30-100% between runs on a small shared machine, ratios much less):
 * - SMA crossover over 1,000,000 synthetic bars: sandboxed (result checks included) against the
 *   same strategy written as a plain JavaScript loop in this realm (plain-baseline.ts), and the
 *   sandbox's runner engine run as plain JavaScript (plain-engine.ts) against that same loop;
 * - isolate start-up: a prepared isolate (runner installed, intrinsics frozen) against a bare one;
 * - a batch of 100 short backtests on a 2-thread pool against the same 100 run one by one.
 *
 * Run with `node --no-node-snapshot build/bench/sandbox/run.js` after `npm run build`.
 */
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
import { runPlainSmaCrossover } from './plain-baseline';
import { runEngineInPlainNode } from './plain-engine';
import { randomWalkBars } from './synthetic-bars';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const SMA_SOURCE = readFileSync(path.join(REPO_ROOT, 'examples', 'sma-crossover.ts'), 'utf8');
const LARGE_BARS = 1_000_000;
const LARGE_REPETITIONS = 7;
const STARTUPS = 30;
const BATCH_RUNS = 100;
const SHORT_BARS = 2_520;
const THREADS = 2;

function row(label: string, value: string, baseline: string, ratio: string): string {
  return `${label.padEnd(52)} ${value.padStart(12)} ${baseline.padStart(12)} ${ratio.padStart(8)}`;
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
    const large: BacktestRequest = { source: SMA_SOURCE, filename: 'sma-crossover.ts', bars: randomWalkBars(LARGE_BARS), params: { fast: 50, slow: 200 } };
    const plainMs: number[] = [];
    const engineMs: number[] = [];
    const inThreadMs: number[] = [];
    const serviceMs: number[] = [];
    let finalEquity = NaN;
    for (let i = 0; i < LARGE_REPETITIONS; i++) {
      const [plain, plainResult] = await timeMs(() => runPlainSmaCrossover(large.bars, large.params.fast, large.params.slow, DEFAULT_CASH, DEFAULT_COMMISSION));
      const job = toStrategyJob(large);
      const [engine, engineMetrics] = await timeMs(() => runEngineInPlainNode(job));
      const [inThread, inThreadResult] = await timeMs(() => runBacktest(large));
      const params = parse(runParamsSchema, large, 'params');
      const [pooled, pooledResult] = await timeMs(() => handle(params));
      const equities = [engineMetrics.final_equity, inThreadResult.metrics.final_equity, pooledResult.metrics.final_equity];
      if (equities.some((value) => value !== plainResult.metrics.final_equity) || pooledResult.fills.length !== plainResult.fills.length) {
        throw new Error(`the sandboxed and plain runs disagree: final equity ${plainResult.metrics.final_equity} (plain loop), ${equities.join(', ')}`);
      }
      finalEquity = plainResult.metrics.final_equity;
      plainMs.push(plain);
      engineMs.push(engine);
      inThreadMs.push(inThread);
      serviceMs.push(pooled);
    }
    const plain = median(plainMs);
    console.log(row('1M-bar SMA, sandbox.run via pool vs plain (ms)', median(serviceMs).toFixed(1), plain.toFixed(1), (median(serviceMs) / plain).toFixed(2)));
    console.log(row('1M-bar SMA, sandbox in this thread vs plain (ms)', median(inThreadMs).toFixed(1), plain.toFixed(1), (median(inThreadMs) / plain).toFixed(2)));
    console.log(row('1M-bar SMA, runner engine unsandboxed vs plain (ms)', median(engineMs).toFixed(1), plain.toFixed(1), (median(engineMs) / plain).toFixed(2)));
    console.log(row('1M-bar SMA, bars per second in the pool (M)', (LARGE_BARS / median(serviceMs) / 1000).toFixed(2), (LARGE_BARS / plain / 1000).toFixed(2), ''));

    // (b) Isolate start-up: the runner installed and every intrinsic frozen, against a bare isolate.
    const preparedMs: number[] = [];
    const bareMs: number[] = [];
    for (let i = 0; i < STARTUPS; i++) {
      const [prepareTime, prepared] = await timeMs(() => prepareIsolate(512));
      prepared.isolate.dispose();
      preparedMs.push(prepareTime);
      const [bareTime, bare] = await timeMs(async () => {
        const isolate = new ivm.Isolate({ memoryLimit: 512 });
        await isolate.createContext();
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

    console.log(`Final equity of the 1M-bar run: ${finalEquity.toFixed(2)} (identical in all four paths).`);
    console.log(`Medians of ${LARGE_REPETITIONS} large runs and ${STARTUPS} start-ups; pool of ${THREADS} threads.`);
    console.log('Plain baseline: the strategy as one hand-written JavaScript loop with the same fills, equity curve');
    console.log('and metrics, in this realm (bench/sandbox/plain-baseline.ts).');
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
