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
  /** True when the child was killed because it missed its deadline. */
  killed: boolean;
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
  const pool = createSandboxPool({ threads: 1 });
  for (const source of job.sources) process.stdout.write(JSON.stringify(await runOnce(pool, source, job.options)) + '\\n');
  process.stdout.write(JSON.stringify(await runOnce(pool, job.healthy, {})) + '\\n');
  await pool.destroy();
})();
`;

/**
 * Runs each of `sources` with `options` and then the healthy strategy on one pool in a child
 * process, with `env` added to the environment. Kills the child when it has not exited after
 * `deadlineMs`.
 */
export function runInChild(sources: readonly string[], options: BacktestOptions, deadlineMs: number, env: Record<string, string> = {}): Promise<ChildReport> {
  const job = JSON.stringify({ sources, options, filename: FILENAME, barCount: BAR_COUNT, healthy: HEALTHY_SOURCE });
  const child = spawn(process.execPath, ['--no-node-snapshot', '--disable-warning=ExperimentalWarning', '-e', CHILD_SCRIPT, job], {
    cwd: REPO_ROOT,
    env: { ...process.env, NODE_OPTIONS: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  let stdout = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    stdout += chunk;
  });
  // The child's stderr (V8's out-of-memory report, abort traces) is read only to keep the pipe
  // drained; the test asserts on the exit and the printed outcomes.
  child.stderr.resume();

  let killed = false;
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
      const outcomes = stdout
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as ChildOutcome);
      resolve({ outcomes, exitCode, signal, killed });
    });
  });
}
