/**
 * The kernel: starts the five services, verifies the installed files before anything else runs,
 * routes every call through the policy table, restarts crashed services with exponential
 * backoff, and serves clients on the control socket.
 *
 * It also decides when storage holds the keyring: from the first unlock until no client session
 * is unlocked any more (locked, expired, connection closed), or the kernel stops. A storage
 * process that crashed comes back locked, so every client session then ends and must unlock
 * again (security event `session.ended_all`).
 */
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { BacktestrError, toBacktestrError, type ErrorDetails } from '../protocol/errors';
import { SANDBOX_RESTART_EVENT } from '../services/runtime/exit-codes';
import { stderrDestination } from '../services/runtime/log-destination';
import { SerialQueue } from '../services/runtime/serial-queue';
import { SERVICE_NAMES, type SecurityEvent, type ServiceName } from '../services/runtime/types';
import { ControlServer, type ControlSession } from './control-server';
import { runBacktest, type RouteAsKernel } from './operations';
import { changePassword, createProfile, unlockProfile } from './profile-operations';
import { checkPolicy, type Caller, type Phase } from './policy';
import { auditServiceProcess } from './privileges/audit-service-process';
import { DEFAULT_ALLOW_MISSING, MECHANISMS, type Mechanism } from './privileges/policy-table';
import { defaultNodeModulesDir } from './privileges/launch-command';
import { ownNetNamespace } from './privileges/proc-read';
import { assertReachableByServices, grantServiceTraversal } from './privileges/service-files';
import { isLiveProcess } from './process-state';
import { ramRootFor } from './ram-dir';
import { KERNEL_PID_FILE, runtimeDirFor } from './runtime-dir';
import { servicePidFile, ServiceProcess, type ExitRecord } from './service-process';
import { SERVICE_SPECS, type ServiceSpec } from './service-table';

export interface KernelOptions {
  profileDir: string;
  /** The compiled build the services run from; defaults to the build this file belongs to. */
  installDir?: string;
  /** Forward service logs to stderr (BACKTESTR_DEBUG=1 sets it in the CLI). */
  forwardLogs?: boolean;
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
  readyTimeoutMs?: number;
  /** First restart delay; each further consecutive restart doubles it, up to MAX_RESTART_DELAY_MS. */
  restartBaseDelayMs?: number;
  /**
   * Operating-system privileges of the services (kernel/privileges/policy-table.ts). On by
   * default; `enabled: false` exists for benchmarks that measure their cost.
   */
  privileges?: { enabled?: boolean; allowMissing?: readonly Mechanism[] };
  /** Lifetime of a client session in ms (auth's default is 8 hours); tests shorten it. */
  sessionLifetimeMs?: number;
  /** How often the kernel locks storage once no client session is unlocked, in ms; default 30 s. */
  sessionCheckIntervalMs?: number;
  /**
   * Tests only: storage creates keyrings with tiny Argon2id parameters. The CLI cannot set it,
   * and a kernel without it refuses to unlock such a keyring (E_INTEGRITY).
   */
  weakKdfForTests?: boolean;
}

const MAX_RESTART_DELAY_MS = 30_000;
/** A service that ran this long before crashing counts as stable: its backoff starts over. */
const STABLE_RUN_MS = 60_000;
/** Security events held while the monitor is restarting. */
const MAX_PENDING_EVENTS = 1000;
const PID_FILE = KERNEL_PID_FILE;
/** Storage methods that check a password; see explainFailure. */
const PASSWORD_CHECKS: ReadonlySet<string> = new Set(['storage.unlock', 'storage.changePassword']);
/** Time a closing client session keeps its socket open so the last reply reaches the client, in ms. */
const SESSION_CLOSE_FLUSH_MS = 200;
const DEFAULT_SESSION_CHECK_INTERVAL_MS = 30_000;
/** Time the kernel waits for storage to lock while it stops, in ms. */
const STOP_LOCK_TIMEOUT_MS = 10_000;

interface ServiceState {
  process: ServiceProcess;
  restarts: number;
  consecutiveCrashes: number;
  /** Set when the service announced that it will end itself (a sandbox that lost an isolate). */
  restartRequested: boolean;
  lastExit: ExitRecord | undefined;
  restartTimer: NodeJS.Timeout | undefined;
}

export class Kernel {
  readonly profileDir: string;
  readonly runtimeDir: string;
  /** Private RAM-backed directory for plaintext of unlocked services; undefined when none exists. */
  readonly ramRoot: string | undefined;
  private readonly ramRootParents: string[];
  readonly installDir: string;
  private readonly services = new Map<ServiceName, ServiceState>();
  private control: ControlServer | undefined;
  private stopping = false;
  private ownsPidFile = false;
  /** Mode the profile directory had when the kernel had to tighten it to 0700, if it did. */
  private readonly profileModeRepaired: number | undefined;
  private readonly pendingEvents: { source: string; event: SecurityEvent }[] = [];
  private droppedEvents = 0;
  private readonly startedAt = Date.now();
  /** True from the moment storage may hold the open keyring until it confirmed a lock or exited. */
  private storageUnlocked = false;
  /** Raised by one whenever the storage process exits, so an unlock can notice a crash under it. */
  private storageIncarnation = 0;
  private sessionCheck: NodeJS.Timeout | undefined;
  /** Orders unlocks, password changes and storage locks, so a lock never lands inside an unlock. */
  private readonly queue = new SerialQueue();
  readonly log = pino({ base: { component: 'kernel', pid: process.pid }, level: process.env.BACKTESTR_DEBUG ? 'info' : 'warn' }, stderrDestination());

  constructor(private readonly options: KernelOptions) {
    this.profileDir = path.resolve(options.profileDir);
    this.installDir = path.resolve(options.installDir ?? path.join(__dirname, '..'));
    this.profileModeRepaired = ensureProfileDirectory(this.profileDir);
    this.runtimeDir = runtimeDirFor(this.profileDir);
    const ram = ramRootFor(this.profileDir, this.runtimeDir);
    this.ramRoot = ram?.root;
    this.ramRootParents = ram?.parents ?? [];
    if (this.privilegesEnabled) {
      const runningAsRoot = process.getuid?.() === 0;
      assertReachableByServices([this.installDir, defaultNodeModulesDir(this.installDir)], runningAsRoot);
      const ramDirs = this.ramRoot === undefined || this.ramRoot === this.runtimeDir ? [] : [...this.ramRootParents, this.ramRoot];
      grantServiceTraversal([path.dirname(this.runtimeDir), this.runtimeDir, this.profileDir, ...ramDirs], runningAsRoot);
    }
  }

  /**
   * Mechanisms a service may start without: the option, else BACKTESTR_ALLOW_MISSING (a comma-
   * separated list of names from MECHANISMS), else DEFAULT_ALLOW_MISSING.
   */
  private get allowMissing(): readonly Mechanism[] {
    return this.options.privileges?.allowMissing ?? allowMissingFromEnvironment() ?? DEFAULT_ALLOW_MISSING;
  }

  private get privilegesEnabled(): boolean {
    return (this.options.privileges?.enabled ?? true) && process.platform === 'linux';
  }

  /** Starts every service; throws E_INTEGRITY (after stopping everything) if verification fails. */
  async start(): Promise<void> {
    claimPidFile(this.runtimeDir);
    this.ownsPidFile = true;
    try {
      // Monitor first, then integrity, which must verify the build before anything else starts.
      // The remaining services do not depend on each other, so they start together.
      const [monitor, integrity, ...rest] = SERVICE_SPECS.map((spec) => this.createService(spec));
      await monitor.start();
      if (this.profileModeRepaired !== undefined) {
        this.recordEvent('kernel', { type: 'profile.mode_repaired', severity: 'warning', details: { path: this.profileDir, mode: this.profileModeRepaired.toString(8) } });
      }
      await integrity.start();
      await this.verifyIntegrity();
      await Promise.all(rest.map((serviceProcess) => serviceProcess.start()));
      this.control = new ControlServer(this.runtimeDir);
      this.control.on('session', (session) => this.serveSession(session));
      this.control.on('violation', (violation) => this.recordEvent('kernel', { type: 'envelope.rejected', severity: 'critical', details: { peer: 'client', reason: violation.reason } }));
      this.sessionCheck = setInterval(() => void this.lockStorageIfIdle('sessions-expired'), this.options.sessionCheckIntervalMs ?? DEFAULT_SESSION_CHECK_INTERVAL_MS);
      this.sessionCheck.unref();
      this.flushPendingEvents();
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  private createService(spec: ServiceSpec): ServiceProcess {
    const serviceProcess = new ServiceProcess(spec, {
      serviceArgs: this.serviceArgs(spec.name),
      profileDir: this.profileDir,
      runtimeDir: this.runtimeDir,
      installDir: this.installDir,
      readyTimeoutMs: this.options.readyTimeoutMs ?? 20_000,
      heartbeatIntervalMs: this.options.heartbeatIntervalMs ?? 1000,
      heartbeatTimeoutMs: this.options.heartbeatTimeoutMs ?? 10_000,
      forwardLogs: this.options.forwardLogs ?? false,
      route: (caller, method, params) => this.route(caller, method, params),
      privileges: { enabled: this.privilegesEnabled, allowMissing: this.allowMissing },
      ramRoot: this.ramRoot,
    });
    const state: ServiceState = { process: serviceProcess, restarts: 0, consecutiveCrashes: 0, restartRequested: false, lastExit: undefined, restartTimer: undefined };
    this.services.set(spec.name, state);
    serviceProcess.on('securityEvent', (event) => {
      if (spec.name === 'sandbox' && event.type === SANDBOX_RESTART_EVENT) state.restartRequested = true;
      this.recordEvent(spec.name, event);
    });
    serviceProcess.on('violation', (violation) => this.recordEvent('kernel', { type: 'envelope.rejected', severity: 'critical', details: { peer: spec.name, reason: violation.reason } }));
    serviceProcess.on('exit', (record) => this.handleServiceExit(state, record));
    return serviceProcess;
  }

  /** Settings for a service's command line (see ServiceSettings); none is secret. */
  private serviceArgs(name: ServiceName): string[] {
    if (name === 'auth' && this.options.sessionLifetimeMs !== undefined) return ['--session-lifetime-ms', String(this.options.sessionLifetimeMs)];
    if (name === 'storage' && this.options.weakKdfForTests) return ['--weak-kdf-for-tests'];
    return [];
  }

  /**
   * Locks storage, then stops services in reverse start order, monitor last so it records the
   * others' stops. Storage also locks in its own stop; locking first means the keys are gone
   * even if a later stop hangs.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.sessionCheck);
    this.control?.close();
    for (const state of this.services.values()) {
      clearTimeout(state.restartTimer);
      state.restartTimer = undefined;
    }
    await this.lockStorageOnStop();
    for (const spec of [...SERVICE_SPECS].reverse()) {
      await this.services.get(spec.name)?.process.stop();
    }
    if (!this.ownsPidFile) return;
    // Only the kernel that owns the profile may remove its sockets: a losing racer must not.
    for (const entry of fs.readdirSync(this.runtimeDir)) {
      if (entry.endsWith('.ipc')) fs.rmSync(path.join(this.runtimeDir, entry), { force: true });
    }
    // The services have ended, so their pid files no longer name a live process.
    for (const spec of SERVICE_SPECS) fs.rmSync(servicePidFile(this.runtimeDir, spec.name), { force: true });
    this.removeRamDirectories();
    releasePidFile(this.runtimeDir);
    removeIfEmpty(this.runtimeDir);
  }

  /**
   * Removes the services' RAM directories and the root the kernel created for them. A service
   * empties its directory when it locks; this also covers one that was killed.
   */
  private removeRamDirectories(): void {
    if (this.ramRoot === undefined) return;
    for (const state of this.services.values()) {
      const ramDir = state.process.ramDir;
      if (ramDir !== undefined) fs.rmSync(ramDir, { recursive: true, force: true });
    }
    if (this.ramRoot !== this.runtimeDir) {
      removeIfEmpty(this.ramRoot);
      for (const parent of this.ramRootParents) removeIfEmpty(parent);
    }
  }

  /** Key for a client in this same process (the CLI's embedded mode). */
  get embeddedClientKey(): Uint8Array {
    if (!this.control) throw new BacktestrError('E_SERVICE_UNAVAILABLE', 'kernel is not started');
    return this.control.keyForEmbeddedClient;
  }

  /**
   * Routes one call after checking the policy; the single path between any two processes.
   * Calls from services carry no client session, so they are checked in the locked phase.
   * `session` is the client connection a client call came on.
   */
  async route(caller: Caller, method: string, params: unknown, phase: Phase = 'locked', session?: ControlSession): Promise<unknown> {
    try {
      checkPolicy(caller, method, phase);
    } catch (error) {
      this.recordEvent('kernel', { type: 'policy.denied', severity: 'warning', details: { caller, method, phase } });
      throw error;
    }

    const asKernel: RouteAsKernel = (inner, innerParams) => this.route('kernel', inner, innerParams, phase);
    if (method === 'kernel.audit') return this.audit();
    if (method === 'backtest.run') return runBacktest(asKernel, params);
    // Client methods that the kernel composes from auth and storage calls (profile-operations.ts).
    if (caller === 'client') {
      if (method === 'auth.createProfile') return this.queue.run(() => createProfile(asKernel, params));
      if (method === 'auth.unlock') return this.unlockSession(asKernel, params, session);
      if (method === 'storage.changePassword') return this.queue.run(() => changePassword(asKernel, params));
    }

    const target = method.slice(0, method.indexOf('.')) as ServiceName;
    const state = this.services.get(target);
    if (!state) throw new BacktestrError('E_UNKNOWN_METHOD', `no service for ${method}`, { method });
    try {
      return await state.process.request(method, params);
    } catch (error) {
      throw this.explainFailure(target, method, toBacktestrError(error));
    }
  }

  /** Per-service facts for `backtestr audit ps`. */
  audit(): Record<string, unknown> {
    const now = Date.now();
    return {
      kernel: {
        pid: process.pid,
        uptimeMs: now - this.startedAt,
        profileDir: this.profileDir,
        clients: (this.control?.activeSessions ?? []).map((session) => ({ id: session.id, phase: session.phase, openedAt: session.openedAt, requestsInFlight: session.requestsInFlight })),
        rejectedControlFrames: this.control?.rejectedFrames ?? 0,
      },
      services: SERVICE_NAMES.map((name) => {
        const state = this.services.get(name);
        const serviceProcess = state?.process;
        return {
          name,
          pid: serviceProcess?.pid ?? null,
          state: serviceState(state),
          uptimeMs: serviceProcess?.ready ? now - serviceProcess.startedAt : 0,
          restarts: state?.restarts ?? 0,
          // Crashes since the last stable run, which set the next restart's backoff. An announced
          // restart (a sandbox that lost a strategy isolate) does not count.
          consecutiveCrashes: state?.consecutiveCrashes ?? 0,
          lastExit: state?.lastExit ? { reason: state.lastExit.reason, detail: state.lastExit.detail, at: state.lastExit.at } : null,
          messages: serviceProcess?.counters ?? { sent: 0, received: 0, rejected: 0 },
          privileges: serviceProcess?.pid !== undefined && this.privilegesEnabled ? this.auditPrivileges(name, serviceProcess.pid, serviceProcess.launcherReport) : null,
        };
      }),
    };
  }

  private auditPrivileges(name: ServiceName, pid: number, launcherReport: ServiceProcess['launcherReport']) {
    const spec = this.services.get(name)!.process.spec;
    return auditServiceProcess(name, pid, {
      kernelUid: process.getuid?.() ?? -1,
      kernelGid: process.getgid?.() ?? -1,
      kernelNetNamespace: ownNetNamespace(),
      kernelSeccompFilters: ownSeccompFilters(),
      runningAsRoot: process.getuid?.() === 0,
      paths: { nodePath: process.execPath, installDir: this.installDir, nodeModulesDir: defaultNodeModulesDir(this.installDir), stateDir: path.join(this.profileDir, spec.stateDirName), ramDir: this.services.get(name)!.process.ramDir },
      allowMissing: this.allowMissing,
      launcherReport,
    });
  }

  private serveSession(session: ControlSession): void {
    session.channel.on('closed', () => void this.endClosedSession(session));
    session.channel.onRequest(async (method, params) => {
      if (method === 'kernel.closeSession') {
        checkPolicy('client', method, session.phase);
        // Close once the reply is on its way; the flush delay lets it leave the socket.
        setImmediate(() => session.channel.close('client closed the session', SESSION_CLOSE_FLUSH_MS));
        return { closed: true };
      }
      session.requestsInFlight++;
      session.lastRequestAt = Date.now();
      try {
        const result = await this.route('client', method, params, session.phase, session);
        if (method === 'auth.lock') {
          session.lock();
          await this.lockStorageIfIdle('last-session-locked');
        }
        return result;
      } finally {
        session.requestsInFlight--;
        session.lastRequestAt = Date.now();
      }
    });
  }

  /**
   * Unlocks the profile for one client connection. The storage incarnation is compared before
   * and after: when storage crashed during the unlock, its keys are gone, so the new session is
   * ended and the client gets E_RUN_ABORTED.
   */
  private unlockSession(route: RouteAsKernel, params: unknown, session: ControlSession | undefined): Promise<unknown> {
    return this.queue.run(async () => {
      const incarnation = this.storageIncarnation;
      this.storageUnlocked = true;
      let issued: { session: string; expiresAt: number } | undefined;
      try {
        issued = await unlockProfile(route, params);
        if (incarnation !== this.storageIncarnation) {
          await route('auth.lock', { session: issued.session }).catch((error: unknown) => this.logFailure('auth.lock', error));
          throw new BacktestrError('E_RUN_ABORTED', 'auth.unlock failed because the storage service restarted during it; unlock again', { service: 'storage', method: 'auth.unlock', reason: 'restarted' });
        }
        session?.unlock(issued.expiresAt, issued.session);
        return issued;
      } finally {
        if (!session || session.phase !== 'unlocked') await this.lockStorageNow('unlock-failed');
      }
    });
  }

  /** Ends the auth session of a closed client connection and locks storage if it was the last. */
  private async endClosedSession(session: ControlSession): Promise<void> {
    const token = session.authSession;
    session.lock();
    if (token !== undefined && !this.stopping) {
      await this.route('kernel', 'auth.lock', { session: token }).catch((error: unknown) => this.logFailure('auth.lock', error));
    }
    await this.lockStorageIfIdle('client-closed');
  }

  /** Locks storage when storage may be unlocked and no client session is unlocked any more. */
  private lockStorageIfIdle(reason: string): Promise<void> {
    return this.queue.run(() => this.lockStorageNow(reason));
  }

  /** Runs inside profileExclusive. Failures are logged: a storage that died comes back locked anyway. */
  private async lockStorageNow(reason: string): Promise<void> {
    if (!this.storageUnlocked || this.stopping) return;
    if (this.control?.activeSessions.some((session) => session.phase === 'unlocked')) return;
    try {
      await this.route('kernel', 'storage.lock', { reason });
      this.storageUnlocked = false;
      this.log.info({ reason }, 'storage locked');
    } catch (error) {
      this.logFailure('storage.lock', error);
    }
  }

  private async lockStorageOnStop(): Promise<void> {
    if (!this.storageUnlocked) return;
    const storage = this.services.get('storage')?.process;
    try {
      await storage?.request('storage.lock', { reason: 'kernel-stopping' }, STOP_LOCK_TIMEOUT_MS);
      this.storageUnlocked = false;
    } catch (error) {
      // Stopping storage next also locks it, and a storage that does not stop in time is killed.
      this.logFailure('storage.lock', error);
    }
  }

  /**
   * Ends every unlocked client session, in the kernel's phases and in auth, after storage exited.
   * The exited process took the open keyring with it, and its successor starts locked.
   */
  private endSessionsAfterStorageExit(): void {
    this.storageIncarnation++;
    const wasUnlocked = this.storageUnlocked;
    this.storageUnlocked = false;
    const sessions = (this.control?.activeSessions ?? []).filter((session) => session.phase === 'unlocked');
    for (const session of sessions) session.lock();
    if (!wasUnlocked && sessions.length === 0) return;

    this.recordEvent('kernel', { type: 'session.ended_all', severity: 'warning', details: { reason: 'storage-exited', endedCount: sessions.length } });
    this.route('kernel', 'auth.endAllSessions', {}).catch((error: unknown) => this.logFailure('auth.endAllSessions', error));
  }


  private logFailure(method: string, error: unknown): void {
    const failure = toBacktestrError(error);
    // Only the code: messages and details can name a symbol or a strategy file, which are user data.
    this.log.warn({ method, code: failure.code }, 'kernel call failed');
  }

  private async verifyIntegrity(): Promise<void> {
    try {
      await this.route('kernel', 'integrity.verify', {});
    } catch (error) {
      const failure = toBacktestrError(error);
      this.log.error({ code: failure.code, details: failure.details }, 'integrity verification failed; stopping');
      // The integrity service reports the event itself; the kernel adds why start-up stopped.
      this.recordEvent('kernel', { type: 'startup.refused', severity: 'critical', details: { code: failure.code, ...failure.details } });
      await this.drainEvents();
      throw failure.code === 'E_INTEGRITY' ? failure : new BacktestrError('E_INTEGRITY', `integrity could not be verified: ${failure.message}`, failure.details);
    }
  }

  private explainFailure(service: ServiceName, method: string, error: BacktestrError): BacktestrError {
    if (error.code !== 'E_CHANNEL_CLOSED') return error;
    const lastExit = this.services.get(service)?.lastExit;
    const why = lastExit ? `${lastExit.reason} (${lastExit.detail})` : 'its channel closed';
    // A password check cut short stays counted toward the lockout, so that killing storage buys
    // no free guess, and a password change may or may not have happened. The message states both.
    const next = PASSWORD_CHECKS.has(method)
      ? '; the attempt was counted toward the lockout. Retry in a moment; after an interrupted password change, exactly one of the two passwords works'
      : '; it is being restarted';
    return new BacktestrError('E_RUN_ABORTED', `${method} failed because the ${service} service stopped: ${why}${next}`, { service, method, reason: lastExit?.reason ?? 'channel-closed' });
  }

  private handleServiceExit(state: ServiceState, record: ExitRecord): void {
    state.lastExit = record;
    if (this.stopping) return;
    const name = state.process.spec.name;
    if (name === 'storage') this.endSessionsAfterStorageExit();
    const ranFor = record.at - state.process.startedAt;
    // An announced restart is not a crash, so it neither grows nor resets the backoff
    // (tests/integration/lost-isolate.test.ts).
    if (!state.restartRequested) state.consecutiveCrashes = ranFor > STABLE_RUN_MS ? 1 : state.consecutiveCrashes + 1;
    state.restartRequested = false;
    const delay = Math.min((this.options.restartBaseDelayMs ?? 250) * 2 ** Math.max(0, state.consecutiveCrashes - 1), MAX_RESTART_DELAY_MS);
    this.log.warn({ service: name, reason: record.reason, detail: record.detail, restartInMs: delay }, 'service exited');
    this.recordEvent('kernel', { type: 'service.exit', severity: record.reason === 'protocol-violation' ? 'critical' : 'warning', details: { service: name, reason: record.reason, detail: record.detail } });
    state.restartTimer = setTimeout(() => {
      state.restartTimer = undefined;
      if (this.stopping) return;
      state.restarts++;
      state.process.start().then(
        () => this.flushPendingEvents(),
        (error: unknown) => this.log.error({ service: name, err: toBacktestrError(error).message }, 'service restart failed'),
      );
    }, delay);
  }

  /** Sends a security event to the monitor, or queues it while the monitor is down. */
  private recordEvent(source: string, event: SecurityEvent): void {
    this.pendingEvents.push({ source, event });
    if (this.pendingEvents.length > MAX_PENDING_EVENTS) {
      this.pendingEvents.shift();
      this.droppedEvents++;
    }
    this.flushPendingEvents();
  }

  private flushPendingEvents(): void {
    void this.drainEvents();
  }

  private async drainEvents(): Promise<void> {
    const monitor = this.services.get('monitor')?.process;
    while (monitor?.ready && this.pendingEvents.length > 0) {
      const { source, event } = this.pendingEvents.shift()!;
      const details: ErrorDetails = { ...event.details };
      if (this.droppedEvents > 0) {
        details.droppedBefore = this.droppedEvents;
        this.droppedEvents = 0;
      }
      try {
        await monitor.request('monitor.record', { source, type: event.type, severity: event.severity, details });
      } catch (error) {
        this.log.error({ type: event.type, err: toBacktestrError(error).message }, 'security event not recorded');
      }
    }
  }
}

function allowMissingFromEnvironment(): readonly Mechanism[] | undefined {
  const value = process.env.BACKTESTR_ALLOW_MISSING;
  if (value === undefined) return undefined;
  const names = value.split(',').map((name) => name.trim()).filter((name) => name.length > 0);
  for (const name of names) {
    if (!(MECHANISMS as readonly string[]).includes(name)) {
      throw new BacktestrError('E_INVALID_PARAMS', `BACKTESTR_ALLOW_MISSING names unknown mechanism ${name}; known: ${MECHANISMS.join(', ')}`, { name });
    }
  }
  return names as Mechanism[];
}

/** Seccomp filters this kernel process runs under, from /proc/self/status (0 if not shown). */
function ownSeccompFilters(): number {
  const match = /^Seccomp_filters:\s*(\d+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return match ? Number(match[1]) : 0;
}

function serviceState(state: ServiceState | undefined): 'running' | 'restarting' | 'stopped' {
  if (state?.process.ready) return 'running';
  if (state?.restartTimer) return 'restarting';
  return 'stopped';
}

/**
 * Creates the profile directory with mode 0700, or checks an existing one. A directory owned by
 * another user is rejected. One of ours that others could read or write is tightened to 0700,
 * and its old mode is returned so that the kernel can report it.
 */
function ensureProfileDirectory(dir: string): number | undefined {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stat = fs.statSync(dir);
  const uid = process.getuid?.() ?? -1;
  if (!stat.isDirectory()) throw new BacktestrError('E_INVALID_PARAMS', `profile path ${dir} is not a directory`);
  if (uid >= 0 && stat.uid !== uid) {
    throw new BacktestrError('E_INVALID_PARAMS', `profile directory ${dir} belongs to uid ${stat.uid}, not to us (uid ${uid}); choose another --profile`);
  }
  // The privileged launch grants service uids search permission alone (0711) when the kernel
  // runs as root. Only read or write access for others is a problem.
  if ((stat.mode & 0o066) === 0) return undefined;
  fs.chmodSync(dir, 0o700);
  return stat.mode & 0o777;
}

/**
 * Claims the profile for this kernel by creating the pid file exclusively, so two kernels
 * started at the same moment cannot both pass. A pid file left by a kernel that died is removed
 * and the claim tried once more.
 */
function claimPidFile(runtimeDir: string): void {
  const pidPath = path.join(runtimeDir, PID_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(pidPath, String(process.pid), { mode: 0o600, flag: 'wx' });
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const pid = Number(fs.readFileSync(pidPath, 'utf8'));
    if (Number.isInteger(pid) && pid > 0 && isLiveProcess(pid)) {
      throw new BacktestrError('E_SERVICE_UNAVAILABLE', `a kernel (pid ${pid}) is already running for this profile`, { pid });
    }
    fs.rmSync(pidPath, { force: true });
  }
  throw new BacktestrError('E_SERVICE_UNAVAILABLE', 'another kernel claimed this profile at the same moment; try again');
}

/** Removes the pid file only if it is this kernel's, so a losing racer never deletes the winner's. */
function releasePidFile(runtimeDir: string): void {
  const pidPath = path.join(runtimeDir, PID_FILE);
  try {
    if (Number(fs.readFileSync(pidPath, 'utf8')) !== process.pid) return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  fs.rmSync(pidPath, { force: true });
}

/** Removes the runtime directory once its sockets and files are gone; a busy one stays. */
function removeIfEmpty(dir: string): void {
  try {
    fs.rmdirSync(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'ENOENT' && code !== 'EEXIST') throw error;
  }
}

