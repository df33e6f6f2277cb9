/**
 * The contract between a service's own code and the service runtime that connects it to the
 * kernel. A service is a table of methods, each with a parameter schema; the runtime decodes and
 * checks every request against that schema before the handler sees it, and the kernel's policy
 * table decides who may call which method in which phase.
 */
import type { Logger } from 'pino';
import type { ErrorDetails } from '../../protocol/errors';
import type { Schema } from '../../protocol/schema';

export const SERVICE_NAMES = ['auth', 'storage', 'sandbox', 'integrity', 'monitor'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export type Severity = 'info' | 'warning' | 'critical';

/** A security-relevant fact, sent to the monitor. Details must never contain a secret. */
export interface SecurityEvent {
  type: string;
  severity: Severity;
  details: ErrorDetails;
}

export interface ServiceContext {
  readonly service: ServiceName;
  /** The profile directory (mode 0700); each service keeps its state in its own subdirectory. */
  readonly profileDir: string;
  /** This service's own directory inside the profile, created with mode 0700 before start. */
  readonly stateDir: string;
  /** The directory the services run from (the compiled build), used by integrity checks. */
  readonly installDir: string;
  /**
   * Private RAM-backed directory (tmpfs, mode 0700) for plaintext kept while the profile is
   * unlocked. Only services whose privilege policy names 'ram-dir' get one, and only on a machine
   * with a RAM-backed file system.
   */
  readonly ramDir?: string;
  /** Logger writing JSON lines to stderr, which the kernel captures. Never log a secret. */
  readonly log: Logger;
  /** Calls `method` (for example 'monitor.record') through the kernel, which checks its policy. */
  call(method: string, params: unknown): Promise<unknown>;
  /** Sends a security event to the monitor through the kernel, without waiting for it. */
  securityEvent(event: SecurityEvent): void;
}

/**
 * Settings the kernel passes to a service on its command line. None of them is secret, and the
 * CLI exposes none of them: only a kernel built by a test sets them.
 */
export interface ServiceSettings {
  /** Auth: session lifetime in milliseconds instead of the default 8 hours. */
  sessionLifetimeMs?: number;
  /**
   * Storage: create keyrings with tiny Argon2id parameters and accept them on unlock, so that
   * tests can create many profiles. A storage service without it rejects such a keyring.
   */
  weakKdfForTests?: boolean;
}

export interface MethodHandler<P = any, R = unknown> {
  /** Schema of the request parameters; the runtime rejects anything else before `handle` runs. */
  readonly params: Schema;
  handle(params: P, ctx: ServiceContext): Promise<R>;
}

export interface ServiceDefinition {
  readonly name: ServiceName;
  /** Methods by short name: the method 'storage.importBars' is `methods.importBars` of storage. */
  readonly methods: Record<string, MethodHandler>;
  /** Runs once after the channel to the kernel is up and before the service reports ready. */
  start?(ctx: ServiceContext): Promise<void>;
  /** Runs on orderly shutdown: close files and wipe keys. */
  stop?(ctx: ServiceContext): Promise<void>;
}
