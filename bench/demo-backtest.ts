/**
 * The demo's backtest through the whole system (kernel, storage, sandbox, storage again), beside
 * the same strategy computed by the sandbox's code directly in this process without the pool,
 * the envelopes or the result storage.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KernelClient } from '../kernel/client';
import { Kernel } from '../kernel/kernel';
import { runBacktest } from '../services/sandbox/backtest';
import { nowUs } from './stats';

const PASSWORD = 'Bench-password-2024!';

function parseSp500(csvPath: string) {
  const lines = fs.readFileSync(csvPath, 'utf8').trim().split('\n').slice(1);
  const columns = { time: new Float64Array(lines.length), open: new Float64Array(lines.length), high: new Float64Array(lines.length), low: new Float64Array(lines.length), close: new Float64Array(lines.length), volume: new Float64Array(lines.length) };
  lines.forEach((line, i) => {
    const [date, open, high, low, close, , volume] = line.split(',');
    columns.time[i] = Date.parse(`${date}T00:00:00Z`);
    columns.open[i] = Number(open);
    columns.high[i] = Number(high);
    columns.low[i] = Number(low);
    columns.close[i] = Number(close);
    columns.volume[i] = Number(volume);
  });
  return columns;
}

export async function measureDemoBacktest(installDir: string, csvPath: string, strategyPath: string, repetitions: number): Promise<{ systemMs: number[]; directMs: number[]; importMs: number }> {
  const source = fs.readFileSync(strategyPath, 'utf8');
  const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'backtestr-bench-'));
  const kernel = new Kernel({ profileDir, installDir });
  await kernel.start();
  const client = await KernelClient.connect(kernel.runtimeDir, kernel.embeddedClientKey);
  try {
    await client.call('auth.createProfile', { password: PASSWORD });
    await client.call('auth.unlock', { password: PASSWORD });
    const importStarted = nowUs();
    await client.call('storage.importBars', { symbol: 'SPX', csv: fs.readFileSync(csvPath) });
    const importMs = (nowUs() - importStarted) / 1000;

    const systemMs: number[] = [];
    const directMs: number[] = [];
    const bars = parseSp500(csvPath);
    for (let i = 0; i < repetitions; i++) {
      const started = nowUs();
      await client.call('backtest.run', { source, filename: 'sma-crossover.ts', symbol: 'SPX', params: { fast: 50, slow: 200 } });
      systemMs.push((nowUs() - started) / 1000);

      const directStarted = nowUs();
      await runBacktest({ source, filename: 'sma-crossover.ts', bars, params: { fast: 50, slow: 200 } });
      directMs.push((nowUs() - directStarted) / 1000);
    }
    return { systemMs, directMs, importMs };
  } finally {
    await client.close();
    await kernel.stop();
    fs.rmSync(profileDir, { recursive: true, force: true });
  }
}
