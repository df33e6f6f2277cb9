/**
 * Helpers for integration tests: a kernel with real service processes on a temporary profile,
 * and a client connected through the real control socket.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KernelClient } from '../../kernel/client';
import { Kernel, type KernelOptions } from '../../kernel/kernel';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const BUILD_DIR = path.join(REPO_ROOT, 'build');
export const SP500_CSV = path.join(REPO_ROOT, 'node_modules', 'vega-datasets', 'data', 'sp500-2000.csv');
export const SMA_STRATEGY = path.join(REPO_ROOT, 'examples', 'sma-crossover.ts');
/** Meets the password policy; used only for throwaway test profiles. */
export const TEST_PASSWORD = 'Correct-Horse-42-battery';

export function temporaryProfile(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'backtestr-test-'));
}

export interface RunningKernel {
  kernel: Kernel;
  client: KernelClient;
  profileDir: string;
  stop(): Promise<void>;
}

/**
 * Starts a kernel on a temporary profile. Keyrings get tiny Argon2id parameters
 * (`weakKdfForTests`) unless the options turn that off, so each unlock takes milliseconds.
 */
export async function startKernel(options: Partial<KernelOptions> = {}): Promise<RunningKernel> {
  const profileDir = options.profileDir ?? temporaryProfile();
  const kernel = new Kernel({ installDir: BUILD_DIR, restartBaseDelayMs: 100, weakKdfForTests: true, ...options, profileDir });
  await kernel.start();
  const client = await KernelClient.connect(kernel.runtimeDir, kernel.embeddedClientKey);
  return {
    kernel,
    client,
    profileDir,
    stop: async () => {
      await client.close();
      await kernel.stop();
    },
  };
}

/** Creates the profile, unlocks it and imports the S&P 500 bars as SPX. */
export async function prepareProfile(client: KernelClient): Promise<void> {
  await client.call('auth.createProfile', { password: TEST_PASSWORD });
  await client.call('auth.unlock', { password: TEST_PASSWORD });
  await client.call('storage.importBars', { symbol: 'SPX', csv: fs.readFileSync(SP500_CSV) });
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    // ESRCH: no such process. Anything else would mean it exists but is not ours.
    return false;
  }
}

export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Awaits a call that must fail with `code` (a string or an asymmetric matcher) and returns its details. */
export async function expectCode(promise: Promise<unknown>, code: unknown): Promise<Record<string, unknown>> {
  try {
    await promise;
  } catch (error) {
    expect((error as { code?: string }).code).toEqual(code);
    return (error as { details: Record<string, unknown> }).details;
  }
  throw new Error(`expected the call to fail with ${String(code)}, but it succeeded`);
}

export interface AuditService {
  name: string;
  pid: number | null;
  state: string;
  restarts: number;
  consecutiveCrashes: number;
  lastExit: { reason: string; detail: string } | null;
  messages: { sent: number; received: number; rejected: number };
}

export async function auditServices(client: KernelClient): Promise<AuditService[]> {
  const audit = await client.call<{ services: AuditService[] }>('kernel.audit', {});
  return audit.services;
}
