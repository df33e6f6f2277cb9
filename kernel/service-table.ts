/**
 * The five services, in start order. Monitor starts first so that every later failure can be
 * recorded, and integrity second so that nothing else starts from unverified files.
 */
import type { ServiceName } from '../services/runtime/types';

export interface ServiceSpec {
  name: ServiceName;
  /** Subdirectory of the profile that the service owns (its ServiceContext.stateDir). */
  stateDirName: string;
  /** Maximum time a single request to this service may take, in ms. */
  requestTimeoutMs: number;
}

export const SERVICE_SPECS: readonly ServiceSpec[] = [
  { name: 'monitor', stateDirName: 'logs', requestTimeoutMs: 10_000 },
  { name: 'integrity', stateDirName: 'integrity', requestTimeoutMs: 60_000 },
  { name: 'auth', stateDirName: 'auth', requestTimeoutMs: 30_000 },
  { name: 'storage', stateDirName: 'data', requestTimeoutMs: 120_000 },
  // A run's own wall-clock limit (30 s by default, configurable) ends it first; this only bounds a hung service.
  { name: 'sandbox', stateDirName: 'sandbox', requestTimeoutMs: 15 * 60_000 },
];

export function serviceSpec(name: ServiceName): ServiceSpec {
  const spec = SERVICE_SPECS.find((candidate) => candidate.name === name);
  if (!spec) throw new Error(`no service named ${name}`);
  return spec;
}
