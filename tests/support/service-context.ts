/**
 * A real ServiceContext for in-process tests: a pino logger writing to a file in a temporary
 * profile directory, a private state directory, and `call`/`securityEvent` that record what the
 * service sent so tests can assert on it.
 */
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import type { SecurityEvent, ServiceContext, ServiceDefinition, ServiceName } from '../../services/runtime/types';
import { BacktestrError } from '../../protocol/errors';
import { parse } from '../../protocol/schema';

export interface RecordedCall {
  method: string;
  params: unknown;
}

export interface TestContext {
  ctx: ServiceContext;
  profileDir: string;
  logFile: string;
  events: SecurityEvent[];
  calls: RecordedCall[];
  /** Reads what the service logged so far. */
  readLog(): string;
  cleanup(): void;
}

export interface TestContextOptions {
  /** Reuse an existing profile directory, as a restarted service would. */
  profileDir?: string;
  installDir?: string;
}

export function createTestContext(service: ServiceName, options: TestContextOptions = {}): TestContext {
  const profileDir = options.profileDir ?? mkdtempSync(path.join(tmpdir(), `backtestr-${service}-`));
  const stateDir = path.join(profileDir, service);
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  // The storage service keeps its unlocked database on tmpfs, as the kernel arranges for it.
  const ramDir = service === 'storage' ? mkdtempSync('/dev/shm/backtestr-test-') : undefined;

  const logFile = path.join(profileDir, `${service}-test.log`);
  const destination = pino.destination({ dest: logFile, sync: true });
  const log = pino({ base: { service } }, destination);

  const events: SecurityEvent[] = [];
  const calls: RecordedCall[] = [];

  const ctx: ServiceContext = {
    service,
    profileDir,
    stateDir,
    installDir: options.installDir ?? path.join(profileDir, 'install'),
    ramDir,
    log,
    async call(method, params) {
      calls.push({ method, params });
      return null;
    },
    securityEvent(event) {
      events.push(event);
    },
  };

  return {
    ctx,
    profileDir,
    logFile,
    events,
    calls,
    readLog: () => readFileSync(logFile, 'utf8'),
    cleanup: () => {
      destination.destroy();
      rmSync(profileDir, { recursive: true, force: true });
      if (ramDir !== undefined) rmSync(ramDir, { recursive: true, force: true });
    },
  };
}

/**
 * Calls a method the way the runtime does: params go through the method's schema first, so a
 * test gets the same E_INVALID_PARAMS as a remote caller.
 */
export async function invoke<R = unknown>(definition: ServiceDefinition, ctx: ServiceContext, method: string, params: unknown): Promise<R> {
  const handler = definition.methods[method];
  if (handler === undefined) throw new Error(`test: ${definition.name} has no method ${method}`);
  const parsed = parse(handler.params, params, 'params');
  return (await handler.handle(parsed, ctx)) as R;
}

/** Returns a settable clock, so lockout, expiry and rate-limit tests never wait for real time. */
export function manualClock(start = 1_700_000_000_000): { now: () => number; advance(ms: number): void } {
  let current = start;
  return {
    now: () => current,
    advance: (ms) => {
      current += ms;
    },
  };
}

/** Awaits a call that must fail and returns its BacktestrError; anything else fails the test. */
export async function errorOf(promise: Promise<unknown>): Promise<BacktestrError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof BacktestrError) return error;
    throw error;
  }
  throw new Error('expected a BacktestrError, but the call succeeded');
}
