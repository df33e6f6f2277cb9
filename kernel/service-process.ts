/**
 * One supervised service process: spawn, hand over the channel secret, wait for Ready,
 * heartbeat, detect exit, and name the crash reason. Restart policy lives in the Supervisor.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { Channel, type ChannelCounters, type ChannelViolation } from '../protocol/channel';
import { EnvelopeCodec } from '../protocol/envelope';
import { BacktestrError } from '../protocol/errors';
import { deriveDirectionKeys, newChannelSecret, wipe } from '../protocol/keys';
import { MessageKind, PeerId } from '../protocol/layout';
import { NanomsgTransport } from '../protocol/transport';
import { ServiceExit } from '../services/runtime/exit-codes';
import type { SecurityEvent, ServiceName } from '../services/runtime/types';
import { buildLaunchCommand, defaultNodeModulesDir, launcherAvailable, type LaunchCommand } from './privileges/launch-command';
import { parseLauncherReport, type LauncherReport } from './privileges/launcher-report';
import { type Mechanism, privilegePolicy } from './privileges/policy-table';
import { handOverSocketFile, prepareRamDirectory, prepareStateDirectory } from './privileges/service-files';
import { serviceRamDir } from './ram-dir';
import { endpointIn } from './runtime-dir';
import type { ServiceSpec } from './service-table';

/** Closed list of reasons a service process ended. */
export type ExitReason =
  | 'clean-exit'
  | 'exit-code'
  | 'signal'
  | 'out-of-memory'
  | 'heartbeat-lost'
  | 'protocol-violation'
  | 'start-failed'
  | 'start-timeout';

export interface ExitRecord {
  reason: ExitReason;
  /** Exit code, signal name or violation reason, for people. */
  detail: string;
  at: number;
}

export interface ServiceProcessOptions {
  /** Settings appended to the service's command line (see ServiceSettings); never secrets. */
  serviceArgs?: readonly string[];
  profileDir: string;
  runtimeDir: string;
  installDir: string;
  readyTimeoutMs: number;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  /** Forward service stderr (pino JSON lines) to the kernel's stderr. */
  forwardLogs: boolean;
  /** Routes a call that the service makes to another service's method through the kernel's policy. */
  route: (caller: ServiceName, method: string, params: unknown) => Promise<unknown>;
  /** Launch through the privilege launcher (kernel/privileges); false runs Node directly. */
  privileges: { enabled: boolean; allowMissing: readonly Mechanism[] };
  /** Private RAM-backed directory for services whose policy names 'ram-dir'; absent when the machine has none. */
  ramRoot?: string;
}

export interface ServiceProcessEvents {
  exit: [record: ExitRecord];
  securityEvent: [event: SecurityEvent];
  violation: [violation: ChannelViolation];
}

const STDERR_TAIL_LINES = 40;

export class ServiceProcess extends EventEmitter<ServiceProcessEvents> {
  private child: ChildProcess | undefined;
  private channel: Channel | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private lastHeartbeatAck = 0;
  private pendingReason: ExitRecord | undefined;
  private readonly stderrTail: string[] = [];
  private totals: ChannelCounters = { sent: 0, received: 0, rejected: 0 };
  startedAt = 0;
  ready = false;
  /** The launcher's report for the current incarnation, read from its stderr. */
  launcherReport: LauncherReport | undefined;

  constructor(readonly spec: ServiceSpec, private readonly options: ServiceProcessOptions) {
    super();
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Message counters over every incarnation of this service. */
  get counters(): ChannelCounters {
    const current = this.channel?.counters ?? { sent: 0, received: 0, rejected: 0 };
    return { sent: this.totals.sent + current.sent, received: this.totals.received + current.received, rejected: this.totals.rejected + current.rejected };
  }

  get recentStderr(): readonly string[] {
    return this.stderrTail;
  }

  /** The service's RAM directory, when its policy names one and the machine has a RAM-backed root. */
  get ramDir(): string | undefined {
    const root = this.options.ramRoot;
    if (root === undefined || !privilegePolicy(this.spec.name).write.includes('ram-dir')) return undefined;
    return serviceRamDir(root, this.spec.name);
  }

  /** Spawns the process and resolves once it reports Ready. */
  async start(): Promise<void> {
    const name = this.spec.name;
    await waitForPreviousInstance(this.options.runtimeDir, name);
    const endpoint = endpointIn(this.options.runtimeDir, name);
    fs.rmSync(endpoint.slice('ipc://'.length), { force: true });
    const secret = newChannelSecret();
    const transport = new NanomsgTransport(endpoint, 'bind');
    const runningAsRoot = process.getuid?.() === 0;
    const policy = privilegePolicy(name);
    handOverSocketFile(policy, endpoint.slice('ipc://'.length), runningAsRoot && this.options.privileges.enabled);
    const channel = new Channel(transport, new EnvelopeCodec(deriveDirectionKeys(secret, PeerId.kernel, PeerId[name]), PeerId.kernel, PeerId[name]), name);
    this.channel = channel;
    this.pendingReason = undefined;
    this.ready = false;
    this.launcherReport = undefined;

    const stateDir = path.join(this.options.profileDir, this.spec.stateDirName);
    prepareStateDirectory(policy, stateDir, runningAsRoot && this.options.privileges.enabled);
    const ramDir = this.ramDir;
    if (ramDir !== undefined) {
      const removed = prepareRamDirectory(policy, ramDir, runningAsRoot && this.options.privileges.enabled);
      // Plaintext was left in RAM since the last run, which only a killed service or kernel does.
      if (removed > 0) this.emit('securityEvent', { type: 'kernel.stale_plaintext_removed', severity: 'warning', details: { entries: removed } });
    }
    const command = this.launchCommand(stateDir, [
      '--no-node-snapshot',
      path.join(this.options.installDir, 'services', 'runtime', 'main.js'),
      '--service', name,
      '--endpoint', endpoint,
      '--profile', this.options.profileDir,
      '--state-dir', stateDir,
      '--install-dir', this.options.installDir,
      ...(ramDir === undefined ? [] : ['--ram-dir', ramDir]),
      ...(this.options.serviceArgs ?? []),
    ], runningAsRoot);
    const child = spawn(command.file, command.args, {
      // fd 0 is a pipe we never write to, so the child reads end-of-file when we die. fd 3 carries the secret.
      stdio: ['pipe', 'ignore', 'pipe', 'pipe'],
      // A clean environment: nothing of the caller's (tokens, NODE_OPTIONS) reaches a service.
      env: { LANG: 'C.UTF-8', TZ: 'UTC' },
    });
    this.child = child;
    this.startedAt = Date.now();
    if (child.pid !== undefined) fs.writeFileSync(servicePidFile(this.options.runtimeDir, name), String(child.pid), { mode: 0o600 });

    const secretPipe = child.stdio[3] as NodeJS.WritableStream;
    // A child that dies before reading its secret resets these pipes. handleExit classifies that
    // exit, so a pipe error is recorded here and never crashes the kernel.
    secretPipe.on('error', (error: Error) => this.captureStderr(`kernel: secret pipe of ${name}: ${error.message}\n`));
    child.stdin?.on('error', (error: Error) => this.captureStderr(`kernel: stdin pipe of ${name}: ${error.message}\n`));
    secretPipe.end(Buffer.from(secret), () => wipe(secret));
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => this.captureStderr(chunk));
    child.on('exit', (code, signal) => this.handleExit(code, signal));

    channel.on('violation', (violation) => {
      this.emit('violation', violation);
      this.kill({ reason: 'protocol-violation', detail: violation.reason, at: Date.now() });
    });
    channel.on('message', (kind, body) => {
      if (kind === MessageKind.HeartbeatAck) this.lastHeartbeatAck = Date.now();
      else if (kind === MessageKind.SecurityEvent) this.emit('securityEvent', body as SecurityEvent);
      else if (kind === MessageKind.Ready) this.markReady();
    });
    channel.onRequest((method, params) => this.options.route(name, method, params));

    await this.waitForReady(child);
  }

  request(method: string, params: unknown, timeoutMs = this.spec.requestTimeoutMs): Promise<unknown> {
    if (!this.ready || !this.channel) {
      return Promise.reject(new BacktestrError('E_SERVICE_UNAVAILABLE', `service ${this.spec.name} is not running`, { service: this.spec.name }));
    }
    return this.channel.request(method, params, timeoutMs);
  }

  /** Asks the service to stop and waits for it; kills it if it does not exit in time. */
  async stop(timeoutMs = 5000): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      this.channel?.send(MessageKind.Shutdown, {});
    } catch (error) {
      this.captureStderr(`kernel: shutdown message not sent: ${(error as Error).message}\n`);
      child.kill('SIGTERM');
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
  }

  /** Kills the process at once, recording why. */
  kill(record: ExitRecord): void {
    this.pendingReason ??= record;
    this.child?.kill('SIGKILL');
  }

  /**
   * Returns the launcher command for this service. It returns plain Node when privileges are off,
   * or when the launcher is missing and the policy allows that; the audit then shows every
   * mechanism as missing.
   */
  private launchCommand(stateDir: string, nodeArgs: string[], runningAsRoot: boolean): LaunchCommand {
    const { enabled, allowMissing } = this.options.privileges;
    const installDir = this.options.installDir;
    if (!enabled) return { file: process.execPath, args: nodeArgs };
    if (!launcherAvailable(installDir)) {
      if (!allowMissing.includes('launcher')) {
        throw new BacktestrError('E_SERVICE_UNAVAILABLE', `service ${this.spec.name} not started: the privilege launcher is missing from ${installDir}; run "npm run build" on Linux`, { service: this.spec.name });
      }
      return { file: process.execPath, args: nodeArgs };
    }
    const paths = { nodePath: process.execPath, installDir, nodeModulesDir: defaultNodeModulesDir(installDir), stateDir, ramDir: this.ramDir };
    return buildLaunchCommand(privilegePolicy(this.spec.name), paths, { runningAsRoot, allowMissing }, [...nodeArgs, '--lock-down']);
  }

  private markReady(): void {
    this.ready = true;
    this.lastHeartbeatAck = Date.now();
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.options.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
  }

  private heartbeat(): void {
    if (Date.now() - this.lastHeartbeatAck > this.options.heartbeatTimeoutMs) {
      this.kill({ reason: 'heartbeat-lost', detail: `no heartbeat for ${this.options.heartbeatTimeoutMs} ms`, at: Date.now() });
      return;
    }
    try {
      this.channel?.send(MessageKind.Heartbeat, { at: Date.now() });
    } catch (error) {
      this.kill({ reason: 'heartbeat-lost', detail: `heartbeat not sent: ${(error as Error).message}`, at: Date.now() });
    }
  }

  private waitForReady(child: ChildProcess): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.kill({ reason: 'start-timeout', detail: `not ready after ${this.options.readyTimeoutMs} ms`, at: Date.now() });
        reject(new BacktestrError('E_SERVICE_UNAVAILABLE', `service ${this.spec.name} did not become ready within ${this.options.readyTimeoutMs} ms`, { service: this.spec.name }));
      }, this.options.readyTimeoutMs);
      const onMessage = (kind: MessageKind) => {
        if (kind !== MessageKind.Ready) return;
        cleanup();
        resolve();
      };
      const onExit = (record: ExitRecord) => {
        cleanup();
        // The launcher's own line names the missing mechanism, so it is preferred over later lines.
        const lastLine = this.stderrTail.findLast((line) => line.startsWith('backtestr-launcher:')) ?? this.stderrTail.at(-1) ?? '';
        reject(new BacktestrError('E_SERVICE_UNAVAILABLE', `service ${this.spec.name} exited during start-up (${record.reason}: ${record.detail}) ${lastLine}`.trim(), { service: this.spec.name, reason: record.reason }));
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.channel?.off('message', onMessage);
        this.off('exit', onExit);
      };
      this.channel?.on('message', onMessage);
      this.once('exit', onExit);
      if (child.exitCode !== null) onExit({ reason: 'start-failed', detail: `exit code ${child.exitCode}`, at: Date.now() });
    });
  }

  private handleExit(code: number | null, signal: NodeJS.Signals | null): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    this.ready = false;
    const record = this.pendingReason ?? this.classifyExit(code, signal);
    // Listeners learn the exit reason before pending requests fail, so those failures can name it.
    this.emit('exit', record);
    if (this.channel) {
      const counters = this.channel.counters;
      this.totals = { sent: this.totals.sent + counters.sent, received: this.totals.received + counters.received, rejected: this.totals.rejected + counters.rejected };
      this.channel.close(`service exited: ${record.reason} (${record.detail})`);
      this.channel = undefined;
    }
    this.child = undefined;
  }

  private classifyExit(code: number | null, signal: NodeJS.Signals | null): ExitRecord {
    const at = Date.now();
    // V8 prints this line before aborting when the heap limit is reached.
    if (this.stderrTail.some((line) => line.includes('heap out of memory'))) return { reason: 'out-of-memory', detail: signal ?? `exit code ${code}`, at };
    if (signal) return { reason: 'signal', detail: signal, at };
    if (code === ServiceExit.ok) return { reason: 'clean-exit', detail: 'exit code 0', at };
    if (code === ServiceExit.protocolViolation) return { reason: 'protocol-violation', detail: 'the service rejected a kernel envelope', at };
    if (code === ServiceExit.startFailed) return { reason: 'start-failed', detail: `exit code ${code}`, at };
    return { reason: 'exit-code', detail: `exit code ${code}`, at };
  }

  private captureStderr(chunk: string): void {
    if (this.options.forwardLogs) process.stderr.write(chunk);
    for (const line of chunk.split('\n')) {
      if (line.length === 0) continue;
      this.launcherReport ??= parseLauncherReport(line);
      this.stderrTail.push(line.slice(0, 2000));
      if (this.stderrTail.length > STDERR_TAIL_LINES) this.stderrTail.shift();
    }
  }
}

/** Time a new kernel waits for a service process of a killed kernel to end. */
const PREVIOUS_INSTANCE_WAIT_MS = 30_000;

/** File in the runtime directory with the pid of the service's current process. */
export function servicePidFile(runtimeDir: string, name: string): string {
  return path.join(runtimeDir, `${name}.pid`);
}

/**
 * Waits until the process recorded for this service by an earlier kernel has ended. A killed
 * kernel's services end by themselves (end-of-file on stdin), but storage first seals its store.
 * A second storage started on the same files before that would write them at the same time.
 * Raises E_SERVICE_UNAVAILABLE when it is still running after PREVIOUS_INSTANCE_WAIT_MS.
 */
async function waitForPreviousInstance(runtimeDir: string, name: string): Promise<void> {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(servicePidFile(runtimeDir, name), 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  const deadline = Date.now() + PREVIOUS_INSTANCE_WAIT_MS;
  while (Number.isSafeInteger(pid) && pid > 0 && isServiceProcess(pid, name)) {
    if (Date.now() > deadline) {
      throw new BacktestrError('E_SERVICE_UNAVAILABLE', `the ${name} service of an earlier kernel (pid ${pid}) is still running; wait for it to end, or end it, then start again`, { service: name, pid });
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** True while `pid` is a BackTestr service process for `name` (the pid may have been reused). */
function isServiceProcess(pid: number, name: string): boolean {
  let cmdline: string;
  try {
    cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return false;
    throw error;
  }
  const args = cmdline.split('\0');
  return args.some((arg) => arg.endsWith(path.join('services', 'runtime', 'main.js'))) && args.includes(name);
}
