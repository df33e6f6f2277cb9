/**
 * The operating-system privileges each service process may hold after start-up (Linux). This
 * table is the one source for both sides: launch-command.ts turns an entry into arguments for
 * the launcher and Node, and proc-audit.ts compares what /proc shows with the same entry.
 *
 * Every service gets the same base: no capabilities in any set, no_new_privs, not dumpable,
 * RLIMIT_CORE 0, its own network namespace, and Landlock rules. It also gets two seccomp filters:
 * the launcher's base filter, then the lock-down filter that the service installs once it runs.
 * The entries below differ in the uid, the open-file limit, the directories the service may
 * write and the Node permission flags.
 */
import { BacktestrError } from '../../protocol/errors';
import type { ServiceName } from '../../services/runtime/types';

/**
 * Mechanisms that a platform may lack. A service starts without one only when the policy in
 * force lists it in `allowMissing`, and the audit then reports it as missing.
 * - network-namespace: neither unshare(CLONE_NEWNET) as root nor an unprivileged user namespace
 *   worked (some distributions forbid user namespaces); the seccomp socket filter still applies.
 * - capability-bounding: the bounding set could not be emptied (a normal user without a user
 *   namespace lacks CAP_SETPCAP); no_new_privs still keeps any capability from being gained.
 * - landlock: the kernel has no Landlock (before Linux 5.13, or disabled at boot).
 * - launcher: no launcher at all (not Linux, or not built); only Node's permission model applies.
 */
export const MECHANISMS = ['network-namespace', 'capability-bounding', 'landlock', 'launcher'] as const;
export type Mechanism = (typeof MECHANISMS)[number];

/**
 * Symbolic paths, resolved per launch by resolvePolicyPaths() in launch-command.ts.
 * - node-binary: the real path of the running Node executable (read and execute).
 * - system-libraries: /lib, /lib64, /usr/lib, /usr/lib64 (read and execute, for the dynamic
 *   loader and the shared libraries of Node and of the native addons), /etc/ld.so.cache.
 * - openssl-config: /etc/ssl/openssl.cnf, which Node 24 reads at start-up and fails without.
 * - system-info: read-only facts about the machine that Node and DuckDB size themselves by:
 *   /sys/fs/cgroup, /sys/devices/system/cpu, /proc/meminfo, /proc/sys/vm/overcommit_memory and
 *   /etc/localtime. DuckDB 1.5 aborts the process when it cannot read the cgroup limits.
 * - install-dir: the compiled build the services run from.
 * - package-json: the package.json next to it, which Node reads to learn the module type of the
 *   entry script and fails without.
 * - node-modules: the dependencies next to it.
 * - proc-self: /proc/self, the process's own /proc entry (Node and libuv read from it).
 * - state-dir: the service's own directory in the profile.
 */
export type PolicyPath = 'node-binary' | 'system-libraries' | 'openssl-config' | 'system-info' | 'install-dir' | 'package-json' | 'node-modules' | 'proc-self' | 'state-dir' | 'ram-dir';

export interface ServicePrivilegePolicy {
  readonly service: ServiceName;
  /** Added to SERVICE_ID_BASE for the uid and gid the service gets when the kernel runs as root. */
  readonly idOffset: number;
  /** RLIMIT_NOFILE, soft and hard. */
  readonly maxOpenFiles: number;
  /** Landlock: read only (execute too for the node binary and system libraries). */
  readonly read: readonly PolicyPath[];
  /** Landlock: read and write. */
  readonly write: readonly PolicyPath[];
  /** Node's permission model, the second layer over Landlock. */
  readonly node: {
    /** Run with --permission at all. */
    readonly permission: boolean;
    readonly allowAddons: boolean;
    readonly allowWorker: boolean;
    /** Extra single paths for --allow-fs-read, beyond the code and the state directory. */
    readonly readFiles: readonly string[];
  };
}

/**
 * First uid and gid of the services when the kernel runs as root: 70001 to 70005. systemd's
 * table of uid ranges (docs/UIDS-GIDS.md) leaves 65536-524287 unused, and shadow's useradd
 * starts subordinate ids at 100000, so this range meets neither regular users nor the dynamic
 * users of systemd (61184-65519).
 * NOTE: a host that assigned these ids to someone else would share files with that user; the
 * ids are not looked up in /etc/passwd.
 */
export const SERVICE_ID_BASE = 70_000;

/** Every service reads the same code, because one build contains every service's compiled files. */
const CODE: readonly PolicyPath[] = ['node-binary', 'system-libraries', 'openssl-config', 'system-info', 'install-dir', 'package-json', 'node-modules', 'proc-self'];

export const PRIVILEGE_POLICIES: readonly ServicePrivilegePolicy[] = [
  // Appends to the security log in its directory.
  { service: 'monitor', idOffset: 1, maxOpenFiles: 128, read: CODE, write: ['state-dir'], node: { permission: true, allowAddons: true, allowWorker: false, readFiles: [] } },
  // Reads the build and its manifest; writes nothing.
  { service: 'integrity', idOffset: 2, maxOpenFiles: 128, read: [...CODE, 'state-dir'], write: [], node: { permission: true, allowAddons: true, allowWorker: false, readFiles: [] } },
  // Writes the profile and lockout files, atomically through a temporary file in the same directory.
  { service: 'auth', idOffset: 3, maxOpenFiles: 128, read: CODE, write: ['state-dir'], node: { permission: true, allowAddons: true, allowWorker: false, readFiles: [] } },
  // Keeps the keyring, vault and sealed store files in its state directory. DuckDB's plaintext
  // database, write-ahead log and spill files live in its RAM directory while unlocked.
  { service: 'storage', idOffset: 4, maxOpenFiles: 256, read: CODE, write: ['state-dir', 'ram-dir'], node: { permission: true, allowAddons: true, allowWorker: false, readFiles: [] } },
  // Runs strategies in isolates on piscina worker threads; keeps no files. isolated-vm loads its
  // binary through node-gyp-build, which tests whether /etc/alpine-release exists, and under the
  // permission model fs.existsSync throws for a path it may not read.
  { service: 'sandbox', idOffset: 5, maxOpenFiles: 64, read: [...CODE, 'state-dir'], write: [], node: { permission: true, allowAddons: true, allowWorker: true, readFiles: ['/etc/alpine-release'] } },
];

/**
 * Mechanisms a service may start without when the kernel options name no others. Each leaves a
 * layer in force that covers most of what it adds, and both gaps are common on desktops: some
 * forbid user namespaces, and without one a normal user cannot empty the bounding set.
 */
export const DEFAULT_ALLOW_MISSING: readonly Mechanism[] = ['network-namespace', 'capability-bounding'];

/** Seccomp filters stacked on a running service: the launcher's base filter and the lock-down filter. */
export const EXPECTED_SECCOMP_FILTERS = 2;

export function privilegePolicy(service: ServiceName): ServicePrivilegePolicy {
  const policy = PRIVILEGE_POLICIES.find((candidate) => candidate.service === service);
  if (!policy) throw new BacktestrError('E_INTERNAL', `no privilege policy for service ${service}`, { service });
  return policy;
}

export function serviceId(policy: ServicePrivilegePolicy): number {
  return SERVICE_ID_BASE + policy.idOffset;
}
