/** Temporary profile directories, fast test KDF parameters and file helpers for the crypto tests. */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Keyring, type Argon2Params, type KeyringOptions } from '../../../services/storage/crypto';

/**
 * Real Argon2id with the smallest memory cost RFC 9106 allows for one lane, so that tests can
 * derive hundreds of keys. Only accepted with `allowWeakKdfForTests`.
 */
export const TEST_KDF: Argon2Params = { memoryKiB: 64, timeCost: 1, parallelism: 1 };
export const TEST_OPTIONS: KeyringOptions = { allowWeakKdfForTests: true };

export function makeTempDir(): string {
  return mkdtempSync(join(tmpdir(), 'backtestr-crypto-'));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export function keyringPath(dir: string): string {
  return join(dir, 'keyring.bin');
}

export function vaultPath(dir: string): string {
  return join(dir, 'vault.bin');
}

export async function createTestKeyring(dir: string, password: string, purposes = ['store', 'vault']): Promise<Keyring> {
  return Keyring.create(keyringPath(dir), password, { ...TEST_OPTIONS, purposes, kdf: TEST_KDF });
}

/** Returns the `code` of the error `promise` rejects with, or 'resolved'. Resolved values are handed to `onValue`. */
export async function errorCodeOf<T>(promise: Promise<T>, onValue?: (value: T) => void): Promise<string> {
  try {
    const value = await promise;
    onValue?.(value);
    return 'resolved';
  } catch (error) {
    return (error as { code?: string }).code ?? `uncoded: ${String(error)}`;
  }
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

export function readBytes(file: string): Uint8Array {
  return new Uint8Array(readFileSync(file));
}

export function listFiles(dir: string): string[] {
  return readdirSync(dir).sort();
}

export interface ChildJob {
  op: 'change-password' | 'change-password-loop' | 'rekey' | 'rekey-loop' | 'vault-put';
  dir: string;
  passwords: string[];
  killAtStep?: number;
  secretName?: string;
  secretValue?: string;
}

export interface ChildOutcome {
  stdout: string;
  stderr: string;
  signal: NodeJS.Signals | null;
  code: number | null;
}

/**
 * Runs the crash child on the compiled library. With `killAfterReadyMs`, the test kills it with
 * SIGKILL that many milliseconds after it printed "ready".
 */
export function runCrashChild(job: ChildJob, killAfterReadyMs?: number): Promise<ChildOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(__dirname, 'crash-child.js')], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const firstReady = !stdout.includes('ready\n') && (stdout + chunk).includes('ready\n');
      stdout += chunk;
      if (firstReady && killAfterReadyMs !== undefined) timer = setTimeout(() => child.kill('SIGKILL'), killAfterReadyMs);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ stdout, stderr, signal, code });
    });
    child.stdin.end(JSON.stringify(job));
  });
}
