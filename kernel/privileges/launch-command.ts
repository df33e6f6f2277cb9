/**
 * Turns a service's privilege policy into the command the kernel spawns:
 *   build/native/backtestr-launcher --service NAME --max-open-files N [--uid N --gid N]
 *     --exec|--read|--write PATH ... [--allow-missing MECHANISM]... -- NODE [permission flags] NODE-ARGS...
 * The launcher applies the operating-system part and execs Node; the permission flags are
 * Node's own second layer. Both come from the same table entry, which the audit reads too.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BacktestrError } from '../../protocol/errors';
import { type Mechanism, type PolicyPath, type ServicePrivilegePolicy, serviceId } from './policy-table';

export const LAUNCHER_RELATIVE_PATH = path.join('native', 'backtestr-launcher');

/** Absolute paths of one launch. */
export interface LaunchPaths {
  /** The real path of the Node executable (process.execPath is one). */
  nodePath: string;
  installDir: string;
  nodeModulesDir: string;
  stateDir: string;
  /** The service's RAM-backed directory; only for policies with 'ram-dir'. */
  ramDir?: string;
}

export interface LaunchOptions {
  /** True when the kernel runs as root: the service then gets its own uid and gid. */
  runningAsRoot: boolean;
  allowMissing: readonly Mechanism[];
}

export interface LaunchCommand {
  file: string;
  args: string[];
}

export interface ResolvedPaths {
  /** Read and execute. */
  exec: string[];
  read: string[];
  write: string[];
}

const SYSTEM_LIBRARY_DIRS = ['/lib', '/lib64', '/usr/lib', '/usr/lib64'];
const SYSTEM_FILES = ['/etc/ld.so.cache'];
const OPENSSL_CONFIG = '/etc/ssl/openssl.cnf';
const SYSTEM_INFO = ['/sys/fs/cgroup', '/sys/devices/system/cpu', '/proc/meminfo', '/proc/sys/vm/overcommit_memory', '/etc/localtime'];

export function defaultNodeModulesDir(installDir: string): string {
  return path.join(path.dirname(path.resolve(installDir)), 'node_modules');
}

export function launcherPath(installDir: string): string {
  return path.join(installDir, LAUNCHER_RELATIVE_PATH);
}

function expand(name: PolicyPath, paths: LaunchPaths): { exec: string[]; read: string[] } {
  switch (name) {
    case 'node-binary':
      return { exec: [paths.nodePath], read: [] };
    case 'system-libraries':
      return { exec: SYSTEM_LIBRARY_DIRS, read: SYSTEM_FILES };
    case 'openssl-config':
      return { exec: [], read: [OPENSSL_CONFIG] };
    case 'system-info':
      return { exec: [], read: SYSTEM_INFO };
    case 'install-dir':
      return { exec: [], read: [paths.installDir] };
    case 'package-json':
      return { exec: [], read: [path.join(path.dirname(paths.installDir), 'package.json')] };
    case 'node-modules':
      return { exec: [], read: [paths.nodeModulesDir] };
    case 'proc-self':
      return { exec: [], read: ['/proc/self'] };
    case 'state-dir':
      return { exec: [], read: [paths.stateDir] };
    case 'ram-dir':
      // Without a RAM-backed file system the service gets no such directory, and the storage
      // service then refuses to unlock rather than write plaintext elsewhere.
      return { exec: [], read: paths.ramDir === undefined ? [] : [paths.ramDir] };
  }
}

/** Expands the symbolic paths of `policy` into absolute Landlock rules. */
export function resolvePolicyPaths(policy: ServicePrivilegePolicy, paths: LaunchPaths): ResolvedPaths {
  const resolved: ResolvedPaths = { exec: [], read: [], write: [] };
  for (const name of policy.read) {
    const expanded = expand(name, paths);
    resolved.exec.push(...expanded.exec);
    resolved.read.push(...expanded.read);
  }
  for (const name of policy.write) {
    const expanded = expand(name, paths);
    resolved.write.push(...expanded.exec, ...expanded.read);
  }
  return resolved;
}

/**
 * Node's permission-model flags for `policy` (Node 24: --permission, each --allow-fs-* flag once
 * per path). Reads cover the code; the state directory is writable only where the policy allows it.
 * Reads the file system to resolve links.
 */
export function nodePermissionFlags(policy: ServicePrivilegePolicy, paths: LaunchPaths): string[] {
  if (!policy.node.permission) return [];
  const flags = ['--permission'];
  for (const dir of [paths.installDir, paths.nodeModulesDir]) {
    // Node checks the path it looks a module up by and then the real path it loads, so a linked
    // directory needs both.
    for (const form of new Set([dir, fs.realpathSync(dir)])) flags.push(`--allow-fs-read=${form}`);
  }
  if (policy.read.includes('state-dir') || policy.write.includes('state-dir')) flags.push(`--allow-fs-read=${paths.stateDir}`);
  for (const file of policy.node.readFiles) flags.push(`--allow-fs-read=${file}`);
  if (policy.write.includes('state-dir')) flags.push(`--allow-fs-write=${paths.stateDir}`);
  if (policy.write.includes('ram-dir') && paths.ramDir !== undefined) flags.push(`--allow-fs-read=${paths.ramDir}`, `--allow-fs-write=${paths.ramDir}`);
  if (policy.node.allowAddons) flags.push('--allow-addons');
  if (policy.node.allowWorker) flags.push('--allow-worker');
  return flags;
}

/**
 * Returns the launcher's options for one service, up to but not including `--`. Throws
 * E_INTERNAL when a path is relative.
 */
export function buildLauncherArguments(policy: ServicePrivilegePolicy, paths: LaunchPaths, options: LaunchOptions): string[] {
  for (const [name, value] of Object.entries(paths)) {
    if (value !== undefined && !path.isAbsolute(value)) throw new BacktestrError('E_INTERNAL', `${name} must be an absolute path, got ${value}`, { name });
  }

  const rules = resolvePolicyPaths(policy, paths);
  const args = ['--service', policy.service, '--max-open-files', String(policy.maxOpenFiles)];
  if (options.runningAsRoot) args.push('--uid', String(serviceId(policy)), '--gid', String(serviceId(policy)));
  for (const entry of rules.exec) args.push('--exec', entry);
  for (const entry of rules.read) args.push('--read', entry);
  for (const entry of rules.write) args.push('--write', entry);
  for (const mechanism of options.allowMissing) {
    if (mechanism !== 'launcher') args.push('--allow-missing', mechanism);
  }
  return args;
}

/**
 * Builds the command that starts one service: the launcher, its options, then Node with the
 * permission flags and `nodeArgs` (Node's options, the script and its arguments).
 */
export function buildLaunchCommand(policy: ServicePrivilegePolicy, paths: LaunchPaths, options: LaunchOptions, nodeArgs: readonly string[]): LaunchCommand {
  const args = buildLauncherArguments(policy, paths, options);
  args.push('--', paths.nodePath, ...nodePermissionFlags(policy, paths), ...nodeArgs);
  return { file: launcherPath(paths.installDir), args };
}

/**
 * Returns whether the launcher is built and executable. Without it a service may start only if
 * `allowMissing` contains 'launcher'; the caller decides and the audit reports it.
 */
export function launcherAvailable(installDir: string): boolean {
  if (process.platform !== 'linux') return false;
  try {
    fs.accessSync(launcherPath(installDir), fs.constants.X_OK);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'EACCES') return false;
    throw error;
  }
}
