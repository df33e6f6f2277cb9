/**
 * The launcher's report: one JSON line on the service's stderr, written after every step and
 * just before execve, so it describes the process before any service code ran. The kernel keeps
 * the last report per service for the audit.
 *   {"backtestrLauncher":1,"service":"storage","pid":123,"uid":70004,"gid":70004,
 *    "network":"own","landlockAbi":7,"boundingDropped":true,"missing":[]}
 */
import { MECHANISMS, type Mechanism } from './policy-table';

/** Network state: own (root), own-in-user-namespace (normal user), shared (none was possible). */
export type LauncherNetwork = 'own' | 'own-in-user-namespace' | 'shared';

export interface LauncherReport {
  service: string;
  pid: number;
  uid: number;
  gid: number;
  network: LauncherNetwork;
  /** Landlock ABI version enforced, 0 when Landlock is missing. */
  landlockAbi: number;
  boundingDropped: boolean;
  missing: Mechanism[];
}

const NETWORKS: readonly string[] = ['own', 'own-in-user-namespace', 'shared'];
const MARKER = '{"backtestrLauncher":1,';

/** Parses one stderr line; returns undefined for any line that is not a well-formed report. */
export function parseLauncherReport(line: string): LauncherReport | undefined {
  if (!line.startsWith(MARKER)) return undefined;
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(line) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof SyntaxError) return undefined;
    throw error;
  }

  const { service, pid, uid, gid, network, landlockAbi, boundingDropped, missing } = value;
  if (typeof service !== 'string' || typeof network !== 'string' || !NETWORKS.includes(network)) return undefined;
  for (const number of [pid, uid, gid, landlockAbi]) {
    if (!Number.isSafeInteger(number) || (number as number) < 0) return undefined;
  }
  if (typeof boundingDropped !== 'boolean' || !Array.isArray(missing)) return undefined;
  if (!missing.every((entry) => (MECHANISMS as readonly unknown[]).includes(entry))) return undefined;
  return {
    service,
    pid: pid as number,
    uid: uid as number,
    gid: gid as number,
    network: network as LauncherNetwork,
    landlockAbi: landlockAbi as number,
    boundingDropped,
    missing: missing as Mechanism[],
  };
}
