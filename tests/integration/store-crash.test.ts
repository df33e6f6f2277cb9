/**
 * kill -9 of the storage service and of the kernel at random moments while a client imports bars
 * and runs backtests (each run stores its result). After every kill the profile unlocks again,
 * every acknowledged import and result is there and whole, and nothing half-written is visible.
 * The kernel runs in its own process (fixtures/kernel-child.js) so that it can be killed too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { KernelClient } from '../../kernel/client';
import { isLiveProcess } from '../../kernel/process-state';
import { SMA_STRATEGY, temporaryProfile, TEST_PASSWORD, waitFor } from '../support/harness';

const ROUNDS = 6;
/** Codes a call in flight may end with when storage or the kernel is killed under it. */
const FAILURES_AFTER_KILL = new Set(['E_RUN_ABORTED', 'E_CHANNEL_CLOSED', 'E_SERVICE_UNAVAILABLE', 'E_SESSION_INVALID', 'E_TIMEOUT', 'E_POLICY_DENIED']);

interface Acked {
  imports: Map<string, number>;
  results: Map<number, number>;
}

interface RunningChild {
  child: ChildProcess;
  runtimeDir: string;
}

function startKernelProcess(profile: string): Promise<RunningChild> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--no-node-snapshot', path.join(__dirname, 'fixtures', 'kernel-child.js'), profile], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let errors = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const line = output.split('\n')[0];
      if (output.includes('\n')) resolve({ child, runtimeDir: (JSON.parse(line) as { runtimeDir: string }).runtimeDir });
    });
    child.stderr!.on('data', (chunk: Buffer) => (errors += chunk.toString()));
    child.on('exit', (code) => reject(new Error(`kernel process exited with ${code} before it was ready: ${errors}`)));
  });
}

function csvFor(count: number, base: number): Buffer {
  const lines = ['date,open,high,low,close,volume'];
  for (let i = 0; i < count; i++) {
    const day = new Date(Date.UTC(1990, 0, 1) + i * 86_400_000).toISOString().slice(0, 10);
    const close = base + Math.sin(i / 9) * 10 + i / 50;
    lines.push(`${day},${close},${close + 1},${close - 1},${close},1000`);
  }
  return Buffer.from(`${lines.join('\n')}\n`);
}

async function storagePid(client: KernelClient): Promise<number> {
  const audit = await client.call<{ services: { name: string; pid: number | null }[] }>('kernel.audit', {});
  return audit.services.find((service) => service.name === 'storage')!.pid!;
}

/** Imports and runs until a call fails (the kill), recording what was acknowledged; returns the failure's code. */
async function writeUntilFailure(client: KernelClient, round: number, acked: Acked, source: string): Promise<string> {
  for (let i = 0; ; i++) {
    try {
      if (i % 2 === 0) {
        const symbol = `R${round}N${i}`;
        const count = 250 + randomInt(0, 500);
        const summary = await client.call<{ bars: number }>('storage.importBars', { symbol, csv: csvFor(count, 100 + i) });
        acked.imports.set(symbol, summary.bars);
      } else {
        const symbol = `R${round}N${i - 1}`;
        const run = await client.call<{ id: number; bars: number }>('backtest.run', { source, filename: 'sma.ts', symbol, params: { fast: 5, slow: 20 } });
        acked.results.set(run.id, run.bars);
      }
    } catch (error) {
      return (error as { code?: string }).code ?? String(error);
    }
  }
}

async function verify(client: KernelClient, acked: Acked, label: string): Promise<void> {
  const symbols = new Map((await client.call<{ symbol: string; bars: number }[]>('storage.listSymbols', {})).map((row) => [row.symbol, row.bars]));
  for (const [symbol, bars] of acked.imports) expect([label, symbol, symbols.get(symbol)]).toEqual([label, symbol, bars]);
  for (const [symbol, bars] of symbols) {
    const series = await client.call<{ close: Uint8Array }>('storage.queryBars', { symbol });
    expect([label, symbol, float64Count(series.close)]).toEqual([label, symbol, bars]);
  }
  const stored = new Set((await client.call<{ id: number }[]>('storage.listBacktests', { limit: 1_000 })).map((row) => row.id));
  for (const [id, bars] of acked.results) {
    expect([label, id, stored.has(id)]).toEqual([label, id, true]);
    const record = await client.call<{ equity: Uint8Array }>('storage.getBacktest', { id });
    expect([label, id, float64Count(record.equity)]).toEqual([label, id, bars]);
  }
}

describe('store crash safety through the kernel', () => {
  let profile: string;
  let running: RunningChild | undefined;

  beforeAll(() => {
    profile = temporaryProfile();
  });

  afterAll(async () => {
    if (running && running.child.exitCode === null && running.child.signalCode === null) {
      running.child.kill('SIGTERM');
      await new Promise((resolve) => running!.child.once('exit', resolve));
    }
    fs.rmSync(profile, { recursive: true, force: true });
  });

  test('kill -9 of storage or kernel loses no acknowledged write', async () => {
    const source = fs.readFileSync(SMA_STRATEGY, 'utf8');
    const acked: Acked = { imports: new Map(), results: new Map() };
    running = await startKernelProcess(profile);
    let client = await KernelClient.connect(running.runtimeDir);
    await client.call('auth.createProfile', { password: TEST_PASSWORD });
    await client.call('auth.unlock', { password: TEST_PASSWORD });

    for (let round = 1; round <= ROUNDS; round++) {
      const killKernel = round % 2 === 0;
      const pid = await storagePid(client);
      const victim = killKernel ? running.child.pid! : pid;
      const timer = setTimeout(() => process.kill(victim, 'SIGKILL'), randomInt(150, 1_200));
      const failure = await writeUntilFailure(client, round, acked, source);
      clearTimeout(timer);
      expect([round, FAILURES_AFTER_KILL.has(failure)]).toEqual([round, true]);
      await client.close();

      if (killKernel) {
        // The services see end-of-file on stdin and exit; a new kernel takes the profile over.
        await waitFor(() => running!.child.exitCode !== null || running!.child.signalCode !== null, 10_000, 'the killed kernel to exit');
        await waitFor(() => !isLiveProcess(pid), 15_000, 'the old storage process to exit');
        running = await startKernelProcess(profile);
      } else {
        await waitFor(async () => {
          try {
            const probe = await KernelClient.connect(running!.runtimeDir);
            const newPid = await storagePid(probe).finally(() => probe.close());
            return newPid !== pid && newPid !== null;
          } catch (error) {
            return false;
          }
        }, 15_000, 'storage to restart');
      }

      client = await KernelClient.connect(running.runtimeDir);
      await waitFor(async () => {
        try {
          await client.call('auth.unlock', { password: TEST_PASSWORD });
          return true;
        } catch (error) {
          return false;
        }
      }, 15_000, 'the profile to unlock after the kill');
      await verify(client, acked, `round ${round} (${killKernel ? 'kernel' : 'storage'} killed)`);
    }
    await client.close();
    expect(acked.imports.size).toBeGreaterThan(ROUNDS);
    expect(acked.results.size).toBeGreaterThan(ROUNDS / 2);
  }, 240_000);
});

/** Float64Array values arrive at a client as their bytes (the envelope codec sends typed arrays as bin). */
function float64Count(bytes: Uint8Array): number {
  return bytes.byteLength / Float64Array.BYTES_PER_ELEMENT;
}
