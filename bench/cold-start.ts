/**
 * Cold start: a kernel with its five services up to Ready (integrity verification included),
 * beside five bare Node processes started in parallel until each prints a line.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kernel } from '../kernel/kernel';
import { nowUs } from './stats';

export async function bareNodeStartMs(processes: number): Promise<number> {
  const started = nowUs();
  await Promise.all(Array.from({ length: processes }, () => new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', 'process.stdout.write("ready\\n")'], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.once('data', () => resolve());
    child.once('error', reject);
  })));
  return (nowUs() - started) / 1000;
}

export async function kernelStartMs(installDir: string): Promise<{ startMs: number; stopMs: number }> {
  const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'backtestr-bench-'));
  const kernel = new Kernel({ profileDir, installDir });
  const started = nowUs();
  await kernel.start();
  const startMs = (nowUs() - started) / 1000;
  const stopping = nowUs();
  await kernel.stop();
  const stopMs = (nowUs() - stopping) / 1000;
  fs.rmSync(profileDir, { recursive: true, force: true });
  return { startMs, stopMs };
}
