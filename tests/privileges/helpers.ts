/**
 * Helpers for the privilege tests: a throwaway install (launcher, addon, probe scripts) and
 * profile laid out as the kernel lays them out, and runners that start a probe through the real
 * launcher under a service's policy.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildLaunchCommand, buildLauncherArguments, type LaunchPaths, LAUNCHER_RELATIVE_PATH } from '../../kernel/privileges/launch-command';
import { parseLauncherReport, type LauncherReport } from '../../kernel/privileges/launcher-report';
import { DEFAULT_ALLOW_MISSING, PRIVILEGE_POLICIES, type ServicePrivilegePolicy } from '../../kernel/privileges/policy-table';
import { prepareStateDirectory } from '../../kernel/privileges/service-files';
import { ADDON_FILE } from '../../ops/native/self-restrict';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
const BUILD_DIR = path.join(REPO_ROOT, 'build');
export const RUNNING_AS_ROOT = process.getuid?.() === 0;
export const ERRNO = os.constants.errno;

/** Builds the launcher and the addon into build/ unless `npm run build` already did. */
function ensureNativeBuild(): void {
  const launcher = path.join(BUILD_DIR, LAUNCHER_RELATIVE_PATH);
  const addon = path.join(BUILD_DIR, 'ops', 'native', ADDON_FILE);
  if (fs.existsSync(launcher) && fs.existsSync(addon)) return;
  const result = spawnSync(process.execPath, [path.join(BUILD_DIR, 'ops', 'launcher', 'build.js')], { stdio: 'inherit' });
  if (result.status !== 0) throw new Error('building the launcher failed; run "npm run build" first');
}

export interface Sandbox {
  root: string;
  /** Install layout: <app>/package.json, <app>/build (installDir), <app>/node_modules. */
  installDir: string;
  nodeModulesDir: string;
  probe: string;
  nodeProbe: string;
  addon: string;
  profileDir: string;
  stateDirs: Record<string, string>;
  /** World-writable directory and world-readable file outside every policy. */
  outsideDir: string;
  outsideFile: string;
  paths(policy: ServicePrivilegePolicy): LaunchPaths;
  remove(): void;
}

/**
 * Creates the install and the profile under a fresh temporary directory. Directories the
 * service uids must cross get mode 0711, as grantServiceTraversal sets them for the kernel.
 */
export function createSandbox(): Sandbox {
  ensureNativeBuild();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'backtestr-privileges-'));
  fs.chmodSync(root, 0o711);
  const app = path.join(root, 'app');
  const installDir = path.join(app, 'build');
  fs.mkdirSync(path.join(installDir, 'native'), { recursive: true, mode: 0o755 });
  fs.chmodSync(app, 0o755);
  fs.writeFileSync(path.join(app, 'package.json'), '{"name":"probe","private":true}\n', { mode: 0o644 });
  fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(app, 'node_modules'));
  fs.copyFileSync(path.join(BUILD_DIR, LAUNCHER_RELATIVE_PATH), path.join(installDir, LAUNCHER_RELATIVE_PATH));
  fs.chmodSync(path.join(installDir, LAUNCHER_RELATIVE_PATH), 0o755);
  const addon = path.join(installDir, ADDON_FILE);
  fs.copyFileSync(path.join(BUILD_DIR, 'ops', 'native', ADDON_FILE), addon);
  const nodeProbe = path.join(installDir, 'node-probe.js');
  fs.copyFileSync(path.join(__dirname, 'fixtures', 'node-probe.js'), nodeProbe);
  for (const file of [addon, nodeProbe]) fs.chmodSync(file, 0o755);

  const probe = path.join(installDir, 'probe');
  const compiled = spawnSync(process.env.CC || 'cc', ['-O2', '-Wall', '-o', probe, path.join(__dirname, 'fixtures', 'probe.c')], { stdio: 'inherit' });
  if (compiled.status !== 0) throw new Error('compiling the probe failed');

  const profileDir = path.join(root, 'profile');
  fs.mkdirSync(profileDir, { mode: 0o711 });
  fs.chmodSync(profileDir, 0o711);
  const stateDirs: Record<string, string> = {};
  for (const policy of PRIVILEGE_POLICIES) {
    const dir = path.join(profileDir, policy.service);
    // A file in every state directory, written before the hand-over, for the cross-reads.
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.writeFileSync(path.join(dir, 'secret.txt'), 'state', { mode: 0o600 });
    prepareStateDirectory(policy, dir, RUNNING_AS_ROOT);
    stateDirs[policy.service] = dir;
  }

  const outsideDir = path.join(root, 'outside');
  fs.mkdirSync(outsideDir);
  fs.chmodSync(outsideDir, 0o777);
  const outsideFile = path.join(outsideDir, 'public.txt');
  fs.writeFileSync(outsideFile, 'public', { mode: 0o644 });

  const nodeModulesDir = path.join(app, 'node_modules');
  return {
    root,
    installDir,
    nodeModulesDir,
    probe,
    nodeProbe,
    addon,
    profileDir,
    stateDirs,
    outsideDir,
    outsideFile,
    paths: (policy) => ({ nodePath: process.execPath, installDir, nodeModulesDir, stateDir: stateDirs[policy.service] }),
    remove: () => fs.rmSync(root, { recursive: true, force: true }),
  };
}

export interface ProbeRun {
  status: number | null;
  /** Outcome per action: 'ok' or the errno number; an action repeated keeps its last outcome. */
  results: Map<string, 'ok' | number>;
  /** Every outcome in the order the actions ran. */
  sequence: ('ok' | number)[];
  report: LauncherReport | undefined;
  stderr: string;
}

function parseProbeOutput(stdout: string): { results: Map<string, 'ok' | number>; sequence: ('ok' | number)[] } {
  const results = new Map<string, 'ok' | number>();
  const sequence: ('ok' | number)[] = [];
  for (const line of stdout.split('\n')) {
    const match = /^(\S+) (?:(ok)|errno (\d+))$/.exec(line);
    if (!match) continue;
    const outcome = match[2] ? 'ok' : Number(match[3]);
    results.set(match[1], outcome);
    sequence.push(outcome);
  }
  return { results, sequence };
}

function reportFrom(stderr: string): LauncherReport | undefined {
  return stderr.split('\n').map(parseLauncherReport).find((report) => report !== undefined);
}

/** Builds the launcher command that runs the C probe under `policy` with `actions`. */
export function probeCommand(sandbox: Sandbox, policy: ServicePrivilegePolicy, actions: string[]): { file: string; args: string[] } {
  const args = buildLauncherArguments(policy, sandbox.paths(policy), { runningAsRoot: RUNNING_AS_ROOT, allowMissing: DEFAULT_ALLOW_MISSING });
  // The probe lives in the install directory, which the policy gives read access only.
  args.push('--exec', sandbox.probe, '--', sandbox.probe, ...actions);
  return { file: path.join(sandbox.installDir, LAUNCHER_RELATIVE_PATH), args };
}

/** Runs the C probe to completion under `policy`. `uid` starts the launcher as that user. */
export function runProbe(sandbox: Sandbox, policy: ServicePrivilegePolicy, actions: string[], uid?: number): ProbeRun {
  const command = probeCommand(sandbox, policy, actions);
  const result = spawnSync(command.file, command.args, { encoding: 'utf8', env: {}, uid, gid: uid, timeout: 20_000 });
  return { status: result.status, ...parseProbeOutput(result.stdout), report: reportFrom(result.stderr), stderr: result.stderr };
}

export interface LiveProcess {
  child: ChildProcess;
  pid: number;
  stdout: string;
  stderr: string;
  report: LauncherReport | undefined;
  /** Closes stdin and waits for the exit status. */
  finish(): Promise<number | null>;
}

/**
 * Starts `file args` and resolves once it has written a first stdout line, leaving it running
 * (both probes wait for stdin to close).
 */
export function startLive(file: string, args: string[]): Promise<LiveProcess> {
  const child = spawn(file, args, { env: { LANG: 'C.UTF-8', TZ: 'UTC' }, stdio: ['pipe', 'pipe', 'pipe'] });
  const live: LiveProcess = {
    child,
    pid: child.pid ?? -1,
    stdout: '',
    stderr: '',
    report: undefined,
    finish: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve(child.exitCode);
        child.once('exit', (code) => resolve(code));
        child.stdin?.end();
      }),
  };
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    live.stderr += chunk;
    live.report ??= reportFrom(live.stderr);
  });
  return new Promise((resolve, reject) => {
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      live.stdout += chunk;
      if (live.stdout.includes('\n')) resolve(live);
    });
    child.once('exit', (code) => reject(new Error(`process exited with ${code} before its first line: ${live.stderr}`)));
    child.once('error', reject);
  });
}

/** Starts the Node probe with the service's real launch command (launcher, permission flags). */
export function startNodeProbe(sandbox: Sandbox, policy: ServicePrivilegePolicy, otherService: string, unixSocketPath: string): Promise<LiveProcess> {
  const command = buildLaunchCommand(policy, sandbox.paths(policy), { runningAsRoot: RUNNING_AS_ROOT, allowMissing: DEFAULT_ALLOW_MISSING }, [
    '--no-node-snapshot',
    sandbox.nodeProbe,
    sandbox.addon,
    sandbox.stateDirs[policy.service],
    sandbox.stateDirs[otherService],
    sandbox.outsideFile,
    sandbox.outsideDir,
    unixSocketPath,
  ]);
  return startLive(command.file, command.args);
}
