/**
 * Runs a hostile strategy, then a healthy one, through a real sandbox pool in a child Node
 * process. Cases that can abort the process or leave a worker spinning forever run here, so that
 * they cannot take the jest process down with them.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { BacktestOptions } from '../../../services/sandbox/types';
import { REPO_ROOT } from '../fixtures';
import { BAR_COUNT, FILENAME, HEALTHY_SOURCE } from './harness';

/** What the child printed for one run: an error code and details, or a summary of the result. */
export type ChildOutcome =
  | { ok: false; code: string; details: Record<string, unknown> }
  | { ok: true; fills: number; logs: string[]; finalEquity: number };

export interface ChildReport {
  /** One entry per finished run: the hostile runs in order, then the healthy run. */
  outcomes: ChildOutcome[];
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** True when the child was killed because it missed its deadline (not after it finished). */
  killed: boolean;
  /** Runs whose isolate the pool reported lost (isolate-run.ts). */
  lostIsolates: number;
}

const BUILD_SANDBOX = path.join(REPO_ROOT, 'build', 'services', 'sandbox');

// The child script uses the compiled pool; it prints one JSON line per run.
const CHILD_SCRIPT = `
const { createSandboxPool } = require(${JSON.stringify(path.join(BUILD_SANDBOX, 'pool.js'))});
const { toStrategyJob, finishBacktest } = require(${JSON.stringify(path.join(BUILD_SANDBOX, 'backtest.js'))});
const job = JSON.parse(process.argv[1]);
const start = Date.UTC(2021, 0, 4);
const column = (value) => Float64Array.from({ length: job.barCount }, (_, i) => value(i));
const closes = column((i) => 100 + 10 * Math.sin(i / 15) + i * 0.01);
const bars = {
  time: column((i) => start + i * 86400000),
  open: column((i) => (i === 0 ? closes[0] : closes[i - 1] + 0.1)),
  high: column((i) => closes[i] + 2),
  low: column((i) => closes[i] - 2),
  close: closes,
  volume: column(() => 1000),
};
async function runOnce(pool, source, options) {
  const strategyJob = toStrategyJob({ source, filename: job.filename, bars, params: {}, options });
  try {
    const result = finishBacktest(strategyJob, await pool.run(strategyJob));
    return { ok: true, fills: result.fills.length, logs: result.logs, finalEquity: result.metrics.final_equity };
  } catch (error) {
    return { ok: false, code: error.code, details: error.details };
  }
}
(async () => {
  let lostIsolates = 0;
  const pool = createSandboxPool({ threads: 1, onIsolateLost: () => lostIsolates++ });
  for (const source of job.sources) process.stdout.write(JSON.stringify(await runOnce(pool, source, job.options)) + '\\n');
  process.stdout.write(JSON.stringify(await runOnce(pool, job.healthy, {})) + '\\n');
  process.stdout.write(JSON.stringify({ lostIsolates }) + '\\n');
  // A lost isolate's native thread keeps the process from exiting: the parent kills it.
  await pool.destroy();
})();
`;

/**
 * Runs each of `sources` with `options` and then the healthy strategy on one pool in a child
 * process, with `env` added to the environment. Kills the child when it has not printed every
 * outcome after `deadlineMs`, or once it has printed them, because a process with a lost
 * isolate cannot exit by itself.
 */
export function runInChild(sources: readonly string[], options: BacktestOptions, deadlineMs: number, env: Record<string, string> = {}): Promise<ChildReport> {
  const job = JSON.stringify({ sources, options, filename: FILENAME, barCount: BAR_COUNT, healthy: HEALTHY_SOURCE });
  const child = spawn(process.execPath, ['--no-node-snapshot', '--disable-warning=ExperimentalWarning', '-e', CHILD_SCRIPT, job], {
    cwd: REPO_ROOT,
    env: { ...process.env, NODE_OPTIONS: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  let stdout = '';
  let killed = false;
  let finished = false;
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    stdout += chunk;
    if (!finished && stdout.includes('"lostIsolates"')) {
      finished = true;
      child.kill('SIGKILL');
    }
  });
  // The child's stderr (V8's out-of-memory report, abort traces) is read only to keep the pipe
  // drained; the test asserts on the exit and the printed outcomes.
  child.stderr.resume();

  const deadline = setTimeout(() => {
    killed = true;
    child.kill('SIGKILL');
  }, deadlineMs);

  return new Promise((resolve, reject) => {
    child.on('error', (error) => {
      clearTimeout(deadline);
      reject(error);
    });
    child.on('close', (exitCode, signal) => {
      clearTimeout(deadline);
      const lines = stdout
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as ChildOutcome | { lostIsolates: number });
      const summary = lines.find((line) => 'lostIsolates' in line) as { lostIsolates: number } | undefined;
      const outcomes = lines.filter((line): line is ChildOutcome => !('lostIsolates' in line));
      resolve({ outcomes, exitCode: finished ? null : exitCode, signal: finished ? null : signal, killed, lostIsolates: summary?.lostIsolates ?? -1 });
    });
  });
}
