/**
 * `npm run bench`: prints each figure beside a baseline measured in the same run, because
 * absolute numbers move 30-100% between runs on a small shared machine.
 */
import path from 'node:path';
import { bareNodeStartMs, kernelStartMs } from './cold-start';
import { measureDemoBacktest } from './demo-backtest';
import { mainJobMs } from './privileges';
import { measureRoundTrips } from './round-trip';
import { median } from './stats';

const BUILD_DIR = path.resolve(__dirname, '..');
const REPO_ROOT = path.resolve(BUILD_DIR, '..');
const ROUND_TRIPS = 5000;
const START_REPETITIONS = 3;
const BACKTEST_REPETITIONS = 5;
const MAIN_JOB_REPETITIONS = 5;

function row(label: string, value: string, baseline: string, ratio: string): string {
  return `${label.padEnd(44)} ${value.padStart(14)} ${baseline.padStart(14)} ${ratio.padStart(8)}`;
}

async function main(): Promise<void> {
  console.log(`BackTestr Core benchmarks, Node ${process.version}, ${process.arch}, ${require('node:os').cpus().length} cores`);
  console.log(row('figure', 'measured', 'baseline', 'ratio'));

  const trips = await measureRoundTrips(ROUND_TRIPS);
  console.log(row('round trip p50, envelope vs raw nanomsg (us)', trips.envelope.p50.toFixed(1), trips.raw.p50.toFixed(1), (trips.envelope.p50 / trips.raw.p50).toFixed(2)));
  console.log(row('round trip p99, envelope vs raw nanomsg (us)', trips.envelope.p99.toFixed(1), trips.raw.p99.toFixed(1), (trips.envelope.p99 / trips.raw.p99).toFixed(2)));
  console.log(row('round trips per second, envelope vs raw', trips.envelope.perSecond.toFixed(0), trips.raw.perSecond.toFixed(0), (trips.envelope.perSecond / trips.raw.perSecond).toFixed(2)));

  const kernelStarts: number[] = [];
  const bareStarts: number[] = [];
  for (let i = 0; i < START_REPETITIONS; i++) {
    kernelStarts.push((await kernelStartMs(BUILD_DIR)).startMs);
    bareStarts.push(await bareNodeStartMs(5));
  }
  console.log(row('cold start to all ready, kernel vs 5 bare (ms)', median(kernelStarts).toFixed(0), median(bareStarts).toFixed(0), (median(kernelStarts) / median(bareStarts)).toFixed(2)));

  const csvPath = path.join(REPO_ROOT, 'node_modules', 'vega-datasets', 'data', 'sp500-2000.csv');
  const strategyPath = path.join(REPO_ROOT, 'examples', 'sma-crossover.ts');
  const demo = await measureDemoBacktest(BUILD_DIR, csvPath, strategyPath, BACKTEST_REPETITIONS);
  console.log(row('demo backtest, system vs in-process (ms)', median(demo.systemMs).toFixed(1), median(demo.directMs).toFixed(1), (median(demo.systemMs) / median(demo.directMs)).toFixed(2)));
  console.log(row('S&P 500 import through the kernel (ms)', demo.importMs.toFixed(1), '-', '-'));
  // Interleaved, so that drifting load on the machine affects both sides alike.
  const restricted: number[] = [];
  const unrestricted: number[] = [];
  for (let i = 0; i < MAIN_JOB_REPETITIONS; i++) {
    restricted.push(await mainJobMs(BUILD_DIR, csvPath, strategyPath, true));
    unrestricted.push(await mainJobMs(BUILD_DIR, csvPath, strategyPath, false));
  }
  console.log(row('main job, restrictions on vs off (ms)', median(restricted).toFixed(0), median(unrestricted).toFixed(0), (median(restricted) / median(unrestricted)).toFixed(2)));

  console.log('Baselines: raw nanomsg pair echo without envelopes; five bare `node -e` processes started together;');
  console.log('the same backtest computed by the sandbox code in this process (no pool, no envelopes, no storage);');
  console.log('the main job (start, create, unlock, import, run, stop) with the services\' OS restrictions off.');
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
