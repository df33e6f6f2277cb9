/**
 * The main job with every service's OS restrictions in force (launcher, seccomp, Landlock, own
 * uids, Node's permission model) beside the same job with them off, in the same run. The job is
 * what `backtestr demo` does: start, create and unlock a profile, import the S&P 500 bars, run the
 * SMA crossover, stop.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KernelClient } from '../kernel/client';
import { Kernel } from '../kernel/kernel';
import { nowUs } from './stats';

const PASSWORD = 'Bench-password-2024!';

export async function mainJobMs(installDir: string, csvPath: string, strategyPath: string, privileges: boolean): Promise<number> {
  const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'backtestr-bench-'));
  const started = nowUs();
  const kernel = new Kernel({ profileDir, installDir, privileges: { enabled: privileges } });
  await kernel.start();
  const client = await KernelClient.connect(kernel.runtimeDir, kernel.embeddedClientKey);
  try {
    await client.call('auth.createProfile', { password: PASSWORD });
    await client.call('auth.unlock', { password: PASSWORD });
    await client.call('storage.importBars', { symbol: 'SPX', csv: fs.readFileSync(csvPath) });
    await client.call('backtest.run', { source: fs.readFileSync(strategyPath, 'utf8'), filename: 'sma-crossover.ts', symbol: 'SPX', params: { fast: 50, slow: 200 } });
  } finally {
    await client.close();
    await kernel.stop();
  }
  const elapsedMs = (nowUs() - started) / 1000;
  fs.rmSync(profileDir, { recursive: true, force: true });
  return elapsedMs;
}
