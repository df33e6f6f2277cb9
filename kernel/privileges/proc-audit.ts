/**
 * Compares what a service process holds (read from /proc by proc-read.ts) with the privilege
 * policy it was launched under, item by item. Pure: the caller passes every input in.
 *
 * Each item ends in one of four states:
 *   ok          the process holds what the policy says;
 *   difference  it holds something else (a test or an auditor must treat this as a failure);
 *   degraded    a mechanism is missing and the policy in force allows running without it;
 *   unreadable  /proc refused the read (see proc-read.ts for who may read what).
 * Landlock leaves no trace in /proc, so its item comes from the launcher's report, written
 * before execve, and says so.
 */
import path from 'node:path';
import type { ServiceName } from '../../services/runtime/types';
import { computeExposure, type ExposureScore } from './exposure';
import { type LaunchPaths, nodePermissionFlags, resolvePolicyPaths } from './launch-command';
import type { LauncherReport } from './launcher-report';
import { EXPECTED_SECCOMP_FILTERS, type Mechanism, type ServicePrivilegePolicy, serviceId } from './policy-table';
import type { IdSet, ProcFacts } from './proc-read';

export const AUDIT_ITEMS = [
  'uid',
  'gid',
  'groups',
  'cap-inheritable',
  'cap-permitted',
  'cap-effective',
  'cap-bounding',
  'cap-ambient',
  'no-new-privs',
  'seccomp-mode',
  'seccomp-filters',
  'dumpable',
  'core-limit',
  'open-files-limit',
  'network-namespace',
  'landlock',
  'file-descriptors',
  'node-permissions',
] as const;
export type AuditItem = (typeof AUDIT_ITEMS)[number];

export type AuditState = 'ok' | 'difference' | 'degraded' | 'unreadable';

export interface AuditEntry {
  item: AuditItem;
  state: AuditState;
  expected: string;
  actual: string;
}

/** Facts about the kernel and the launch that the audit needs besides the policy. */
export interface AuditContext {
  kernelUid: number;
  kernelGid: number;
  kernelNetNamespace: string;
  /**
   * Seccomp filters the kernel process itself runs under (a container runtime or a systemd
   * unit may install some). Services inherit them, so they are expected on top of our own.
   */
  kernelSeccompFilters?: number;
  runningAsRoot: boolean;
  paths: LaunchPaths;
  allowMissing: readonly Mechanism[];
  /** The launcher's report for this incarnation of the service, if the kernel kept one. */
  launcherReport?: LauncherReport;
}

export interface ServiceAudit {
  service: ServiceName;
  pid: number;
  entries: AuditEntry[];
  differences: AuditEntry[];
  degraded: Mechanism[];
  exposure: ExposureScore;
}

/** Paths that every process may hold open without a Landlock rule: stdout is /dev/null. */
const ALWAYS_ALLOWED_FILES = ['/dev/null'];

function entry(item: AuditItem, expected: string, actual: string, matches: boolean): AuditEntry {
  return { item, state: matches ? 'ok' : 'difference', expected, actual };
}

function idEntry(item: 'uid' | 'gid', ids: IdSet, expected: number): AuditEntry {
  const values = [ids.real, ids.effective, ids.saved, ids.filesystem];
  return entry(item, `${expected} (real, effective, saved, filesystem)`, values.join(' '), values.every((value) => value === expected));
}

function capabilityEntry(item: AuditItem, value: bigint): AuditEntry {
  return entry(item, '0000000000000000', value.toString(16).padStart(16, '0'), value === 0n);
}

/**
 * Marks a missing mechanism as degraded when the launcher reported it missing and the policy
 * allows that, else as a difference: without the report, the gap has no explanation.
 */
function missingMechanism(item: AuditItem, mechanism: Mechanism, context: AuditContext, expected: string, actual: string, degraded: Mechanism[]): AuditEntry {
  const reported = context.launcherReport?.missing.includes(mechanism) ?? false;
  if (!reported || !context.allowMissing.includes(mechanism)) return entry(item, expected, actual, false);
  degraded.push(mechanism);
  return { item, state: 'degraded', expected, actual: `${actual} (allowed: ${mechanism} missing)` };
}

function isWithin(target: string, roots: readonly string[]): boolean {
  return roots.some((root) => target === root || target.startsWith(root.endsWith(path.sep) ? root : `${root}${path.sep}`));
}

/** /proc shows a deleted file as "<path> (deleted)"; the path is what the rules were about. */
function stripDeleted(target: string): string {
  return target.endsWith(' (deleted)') ? target.slice(0, -' (deleted)'.length) : target;
}

function fileDescriptorEntry(policy: ServicePrivilegePolicy, facts: ProcFacts, context: AuditContext): AuditEntry {
  const expected = `at most ${policy.maxOpenFiles}; files only under the policy's paths`;
  if (!facts.fileDescriptors.ok) return { item: 'file-descriptors', state: 'unreadable', expected, actual: facts.fileDescriptors.errno };

  const rules = resolvePolicyPaths(policy, context.paths);
  // /proc/self was resolved to this process's own /proc/<pid> by the launcher.
  const allowed = [...rules.exec, ...rules.read, ...rules.write, ...ALWAYS_ALLOWED_FILES, `/proc/${facts.pid}`];
  const descriptors = facts.fileDescriptors.value;
  const outside = descriptors.filter((descriptor) => descriptor.target.startsWith('/') && !isWithin(stripDeleted(descriptor.target), allowed));
  const actual = outside.length === 0 ? `${descriptors.length} open` : `${descriptors.length} open; outside the policy: ${outside.map((d) => `${d.fd} -> ${d.target}`).join(', ')}`;
  return entry('file-descriptors', expected, actual, outside.length === 0 && descriptors.length <= policy.maxOpenFiles);
}

function nodePermissionEntry(policy: ServicePrivilegePolicy, facts: ProcFacts, context: AuditContext): AuditEntry {
  const expected = nodePermissionFlags(policy, context.paths);
  const held = facts.cmdline.filter((argument) => argument === '--permission' || argument.startsWith('--allow-'));
  const missing = expected.filter((flag) => !held.includes(flag));
  const extra = held.filter((flag) => !expected.includes(flag));
  return entry('node-permissions', expected.join(' '), held.length === 0 ? 'none' : held.join(' '), missing.length === 0 && extra.length === 0);
}

function landlockEntry(context: AuditContext, degraded: Mechanism[]): AuditEntry {
  const expected = 'enforced (Landlock leaves no trace in /proc; from the launcher report)';
  const report = context.launcherReport;
  if (!report) return { item: 'landlock', state: 'unreadable', expected, actual: 'no launcher report' };
  if (report.landlockAbi > 0) return entry('landlock', expected, `enforced, ABI ${report.landlockAbi}`, true);
  return missingMechanism('landlock', 'landlock', context, expected, 'not enforced', degraded);
}

function networkEntry(facts: ProcFacts, context: AuditContext, degraded: Mechanism[]): AuditEntry {
  const expected = `a namespace other than the kernel's ${context.kernelNetNamespace}`;
  if (!facts.netNamespace.ok) return { item: 'network-namespace', state: 'unreadable', expected, actual: facts.netNamespace.errno };
  if (facts.netNamespace.value !== context.kernelNetNamespace) return entry('network-namespace', expected, facts.netNamespace.value, true);
  return missingMechanism('network-namespace', 'network-namespace', context, expected, `${facts.netNamespace.value} (the kernel's)`, degraded);
}

function boundingEntry(facts: ProcFacts, context: AuditContext, degraded: Mechanism[]): AuditEntry {
  const value = facts.status.capBounding;
  const ok = capabilityEntry('cap-bounding', value);
  if (ok.state === 'ok') return ok;
  return missingMechanism('cap-bounding', 'capability-bounding', context, ok.expected, ok.actual, degraded);
}

/**
 * Returns the dumpable evidence from /proc. The process is not dumpable when /proc/<pid>/status belongs to root while the process runs
 * under another uid (proc(5): files in /proc/<pid> belong to root when the dumpable flag is
 * cleared).
 */
export function isDumpableEvidence(facts: ProcFacts): 'dumpable' | 'not-dumpable' | 'unknown' {
  if (facts.status.uid.effective === 0) return 'unknown';
  return facts.statusOwnerUid === 0 ? 'not-dumpable' : 'dumpable';
}

/** Compares every audit item of one service process with its policy. */
export function auditService(policy: ServicePrivilegePolicy, facts: ProcFacts, context: AuditContext): ServiceAudit {
  const degraded: Mechanism[] = [];
  const status = facts.status;
  const expectedUid = context.runningAsRoot ? serviceId(policy) : context.kernelUid;
  const expectedGid = context.runningAsRoot ? serviceId(policy) : context.kernelGid;
  const dumpable = isDumpableEvidence(facts);

  const expectedFilters = EXPECTED_SECCOMP_FILTERS + (context.kernelSeccompFilters ?? 0);
  const entries: AuditEntry[] = [
    idEntry('uid', status.uid, expectedUid),
    idEntry('gid', status.gid, expectedGid),
    context.runningAsRoot
      ? entry('groups', 'none', status.groups.length === 0 ? 'none' : status.groups.join(' '), status.groups.length === 0)
      // A normal user cannot drop supplementary groups (setgroups needs CAP_SETGID outside a user namespace).
      : { item: 'groups', state: 'ok', expected: "the kernel's (normal user)", actual: status.groups.join(' ') || 'none' },
    capabilityEntry('cap-inheritable', status.capInheritable),
    capabilityEntry('cap-permitted', status.capPermitted),
    capabilityEntry('cap-effective', status.capEffective),
    boundingEntry(facts, context, degraded),
    capabilityEntry('cap-ambient', status.capAmbient),
    entry('no-new-privs', '1', String(status.noNewPrivs), status.noNewPrivs === 1),
    entry('seccomp-mode', '2 (filter)', String(status.seccompMode), status.seccompMode === 2),
    entry('seccomp-filters', String(expectedFilters), String(status.seccompFilters ?? 'not shown'), status.seccompFilters === expectedFilters),
    entry('dumpable', 'not-dumpable', dumpable, dumpable === 'not-dumpable'),
    entry('core-limit', '0 0', `${facts.limits.core.soft} ${facts.limits.core.hard}`, facts.limits.core.soft === 0 && facts.limits.core.hard === 0),
    entry(
      'open-files-limit',
      `${policy.maxOpenFiles} ${policy.maxOpenFiles}`,
      `${facts.limits.openFiles.soft} ${facts.limits.openFiles.hard}`,
      facts.limits.openFiles.soft === policy.maxOpenFiles && facts.limits.openFiles.hard === policy.maxOpenFiles,
    ),
    networkEntry(facts, context, degraded),
    landlockEntry(context, degraded),
    fileDescriptorEntry(policy, facts, context),
    nodePermissionEntry(policy, facts, context),
  ];

  return {
    service: policy.service,
    pid: facts.pid,
    entries,
    differences: entries.filter((candidate) => candidate.state === 'difference'),
    degraded,
    exposure: computeExposure(facts, { kernelNetNamespace: context.kernelNetNamespace, landlockAbi: context.launcherReport?.landlockAbi }),
  };
}
