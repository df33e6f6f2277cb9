/** Real ServiceContext and temporary directories for storage tests. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { parse } from '../../protocol/schema';
import type { SecurityEvent, ServiceContext, ServiceDefinition } from '../../services/runtime/types';

export const SP500_CSV_PATH = join(__dirname, '../../node_modules/vega-datasets/data/sp500-2000.csv');

export function readSp500Csv(): Uint8Array {
  return new Uint8Array(readFileSync(SP500_CSV_PATH));
}

export interface TestContext extends ServiceContext {
  readonly calls: { method: string; params: unknown }[];
  readonly events: SecurityEvent[];
  readonly logFile: string;
}

/** Builds a context whose profile lives in a fresh temporary directory and whose log is a file. */
export function createTestContext(profileDir = mkdtempSync(join(tmpdir(), 'backtestr-storage-'))): TestContext {
  const logFile = join(profileDir, 'storage-test.log');
  const calls: { method: string; params: unknown }[] = [];
  const events: SecurityEvent[] = [];
  return {
    service: 'storage',
    profileDir,
    stateDir: join(profileDir, 'storage'),
    installDir: join(__dirname, '../..'),
    // A fresh tmpfs directory per context, as the kernel gives every (re)started storage process.
    ramDir: mkdtempSync('/dev/shm/backtestr-storage-test-'),
    log: pino({ level: 'debug' }, pino.destination({ dest: logFile, sync: true })),
    calls,
    events,
    logFile,
    async call(method: string, params: unknown) {
      calls.push({ method, params });
      return undefined;
    },
    securityEvent(event: SecurityEvent) {
      events.push(event);
    },
  };
}

export function removeProfile(ctx: TestContext): void {
  rmSync(ctx.profileDir, { recursive: true, force: true });
  if (ctx.ramDir !== undefined) rmSync(ctx.ramDir, { recursive: true, force: true });
}

/** Calls a method the way the runtime does: the parameters go through the method's schema first. */
export async function callMethod(service: ServiceDefinition, ctx: ServiceContext, method: string, params: unknown): Promise<any> {
  const handler = service.methods[method];
  if (handler === undefined) throw new Error(`no method ${method}`);
  return handler.handle(parse(handler.params, params, 'params'), ctx);
}

/** Encodes CSV text as the bytes a caller would send. */
export function csvBytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** Runs `fn`, expects it to throw, and returns the error for assertions on its code and details. */
export async function captureError(fn: () => unknown): Promise<any> {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error, but the call succeeded');
}

/** Password for throwaway storage profiles; meets the password policy. */
export const STORAGE_TEST_PASSWORD = 'Storage-Test-42-password';

/**
 * Starts a storage service, creates its keyring if there is none and unlocks it, which opens the
 * store. Build the service with `weakKdfForTests` so that this takes milliseconds.
 */
export async function startUnlocked(service: ServiceDefinition, ctx: ServiceContext, password = STORAGE_TEST_PASSWORD): Promise<void> {
  await service.start!(ctx);
  const status = await callMethod(service, ctx, 'status', {});
  if (!status.keyringExists) await callMethod(service, ctx, 'createKeyring', { password });
  await callMethod(service, ctx, 'unlock', { password });
}
