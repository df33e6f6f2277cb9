/**
 * An exposure score for one process, from 0.0 (holds nothing on this list) to 10.0 (holds all
 * of it), in the manner of `systemd-analyze security`. Unlike systemd's score it is computed
 * from what the process holds according to /proc, not from what a unit file asked for, and it
 * ignores the policy: a process that holds a privilege scores for it even when the policy
 * allowed it. The weights are this project's judgment of how much each item helps an attacker
 * who runs code in the service; they are not systemd's.
 */
import type { ProcFacts } from './proc-read';

export interface ExposureReason {
  /** Short id, stable for scripts. */
  check: string;
  weight: number;
  /** Why holding it matters, for people. */
  reason: string;
}

export interface ExposureScore {
  score: number;
  rating: 'low' | 'medium' | 'high' | 'unsafe';
  /** Checks the process fails, heaviest first. */
  reasons: ExposureReason[];
  /** Checks the process passes. */
  passed: string[];
}

export interface ExposureContext {
  kernelNetNamespace: string;
  /** Landlock ABI enforced according to the launcher's report; undefined when unknown. */
  landlockAbi: number | undefined;
}

interface Check {
  check: string;
  weight: number;
  reason: string;
  exposed: (facts: ProcFacts, context: ExposureContext) => boolean;
}

const CHECKS: readonly Check[] = [
  { check: 'root-uid', weight: 10, reason: 'runs as uid 0, so it owns every root-owned file that DAC still protects', exposed: (f) => f.status.uid.effective === 0 || f.status.uid.real === 0 || f.status.uid.saved === 0 },
  { check: 'capabilities', weight: 10, reason: 'holds capabilities in its effective or permitted set', exposed: (f) => f.status.capEffective !== 0n || f.status.capPermitted !== 0n },
  { check: 'seccomp-off', weight: 8, reason: 'has no seccomp filter, so every system call reaches the kernel', exposed: (f) => f.status.seccompMode !== 2 },
  { check: 'landlock-off', weight: 6, reason: 'has no Landlock domain, so it reaches every file its uid may reach', exposed: (_f, c) => !c.landlockAbi },
  { check: 'no-new-privs-off', weight: 5, reason: 'no_new_privs is off, so executing a set-uid program could gain privileges', exposed: (f) => f.status.noNewPrivs !== 1 },
  { check: 'shared-network', weight: 4, reason: "shares the kernel's network namespace (only the seccomp socket filter keeps it off the network)", exposed: (f, c) => !f.netNamespace.ok || f.netNamespace.value === c.kernelNetNamespace },
  { check: 'dumpable', weight: 4, reason: 'is dumpable: same-uid processes may ptrace it or read its memory through /proc', exposed: (f) => f.statusOwnerUid !== 0 || f.status.uid.effective === 0 },
  { check: 'exec-allowed', weight: 3, reason: 'fewer than two seccomp filters: the lock-down filter that denies execve is missing', exposed: (f) => (f.status.seccompFilters ?? 0) < 2 },
  { check: 'inheritable-or-ambient', weight: 3, reason: 'holds inheritable or ambient capabilities that a program it starts could receive', exposed: (f) => f.status.capInheritable !== 0n || f.status.capAmbient !== 0n },
  { check: 'bounding-set', weight: 2, reason: 'its capability bounding set is not empty (harmless only while no_new_privs holds)', exposed: (f) => f.status.capBounding !== 0n },
  { check: 'supplementary-groups', weight: 2, reason: 'keeps supplementary groups, and with them group access to their files', exposed: (f) => f.status.groups.length > 0 },
  { check: 'node-permission-off', weight: 2, reason: "runs without Node's permission model (--permission)", exposed: (f) => !f.cmdline.includes('--permission') },
  { check: 'child-process-allowed', weight: 2, reason: "Node's permission model allows child processes", exposed: (f) => f.cmdline.includes('--allow-child-process') },
  { check: 'core-dumps', weight: 1, reason: 'may write core dumps, which would contain keys and session data', exposed: (f) => f.limits.core.soft !== 0 || f.limits.core.hard !== 0 },
  { check: 'open-files-unbounded', weight: 1, reason: 'may open more than 1024 files', exposed: (f) => f.limits.openFiles.hard > 1024 },
];

const TOTAL_WEIGHT = CHECKS.reduce((sum, check) => sum + check.weight, 0);

function rate(score: number): ExposureScore['rating'] {
  if (score < 2) return 'low';
  if (score < 5) return 'medium';
  if (score < 7.5) return 'high';
  return 'unsafe';
}

export function computeExposure(facts: ProcFacts, context: ExposureContext): ExposureScore {
  const reasons: ExposureReason[] = [];
  const passed: string[] = [];
  for (const check of CHECKS) {
    if (check.exposed(facts, context)) reasons.push({ check: check.check, weight: check.weight, reason: check.reason });
    else passed.push(check.check);
  }
  const exposedWeight = reasons.reduce((sum, reason) => sum + reason.weight, 0);
  const score = Math.round((100 * exposedWeight) / TOTAL_WEIGHT) / 10;
  return { score, rating: rate(score), reasons, passed };
}
