/**
 * The routing policy: who may call which method in which phase. Anything not listed is denied.
 *
 * 'locked' means the calling connection holds no valid session; 'unlocked' means it unlocked the
 * profile with the password and the session has not expired. Services act in the phase of the
 * client connection the kernel is serving. The sandbox may call nothing but the monitor: the
 * results it produces are stored by the kernel's own backtest operation, never by the sandbox.
 */
import { BacktestrError } from '../protocol/errors';
import type { ServiceName } from '../services/runtime/types';

export type Caller = 'client' | 'kernel' | ServiceName;
export type Phase = 'locked' | 'unlocked';

export interface PolicyRule {
  caller: Caller;
  method: string;
  phases: readonly Phase[];
}

const ANY: readonly Phase[] = ['locked', 'unlocked'];
const LOCKED: readonly Phase[] = ['locked'];
const UNLOCKED: readonly Phase[] = ['unlocked'];

export const POLICY: readonly PolicyRule[] = [
  // The desktop shell, the CLI and auditors.
  { caller: 'client', method: 'kernel.audit', phases: ANY },
  { caller: 'client', method: 'kernel.closeSession', phases: ANY },
  { caller: 'client', method: 'auth.status', phases: ANY },
  { caller: 'client', method: 'auth.createProfile', phases: LOCKED },
  { caller: 'client', method: 'auth.unlock', phases: LOCKED },
  { caller: 'client', method: 'auth.lock', phases: UNLOCKED },
  { caller: 'client', method: 'integrity.verify', phases: ANY },
  { caller: 'client', method: 'monitor.counts', phases: ANY },
  { caller: 'client', method: 'monitor.tail', phases: UNLOCKED },
  { caller: 'client', method: 'storage.importBars', phases: UNLOCKED },
  { caller: 'client', method: 'storage.queryBars', phases: UNLOCKED },
  { caller: 'client', method: 'storage.listSymbols', phases: UNLOCKED },
  { caller: 'client', method: 'storage.listBacktests', phases: UNLOCKED },
  { caller: 'client', method: 'storage.getBacktest', phases: UNLOCKED },
  { caller: 'client', method: 'backtest.run', phases: UNLOCKED },
  // The kernel serves storage.changePassword itself, under the unlock lockout (profile-operations.ts).
  { caller: 'client', method: 'storage.changePassword', phases: UNLOCKED },
  { caller: 'client', method: 'storage.rekey', phases: UNLOCKED },
  { caller: 'client', method: 'storage.putSecret', phases: UNLOCKED },
  { caller: 'client', method: 'storage.getSecret', phases: UNLOCKED },
  { caller: 'client', method: 'storage.listSecrets', phases: UNLOCKED },
  { caller: 'client', method: 'storage.deleteSecret', phases: UNLOCKED },
  { caller: 'client', method: 'storage.status', phases: UNLOCKED },

  // The kernel's own operations, on behalf of a client. Creating, unlocking and locking the
  // profile run in either phase: another connection may hold storage unlocked.
  { caller: 'kernel', method: 'integrity.verify', phases: ANY },
  { caller: 'kernel', method: 'monitor.record', phases: ANY },
  { caller: 'kernel', method: 'auth.validateSession', phases: ANY },
  { caller: 'kernel', method: 'auth.status', phases: ANY },
  { caller: 'kernel', method: 'auth.recordProfile', phases: LOCKED },
  { caller: 'kernel', method: 'auth.beginUnlock', phases: ANY },
  { caller: 'kernel', method: 'auth.finishUnlock', phases: ANY },
  { caller: 'kernel', method: 'auth.lock', phases: ANY },
  { caller: 'kernel', method: 'auth.endAllSessions', phases: ANY },
  { caller: 'kernel', method: 'storage.createKeyring', phases: LOCKED },
  { caller: 'kernel', method: 'storage.unlock', phases: ANY },
  { caller: 'kernel', method: 'storage.lock', phases: ANY },
  { caller: 'kernel', method: 'storage.status', phases: ANY },
  { caller: 'kernel', method: 'storage.changePassword', phases: UNLOCKED },
  { caller: 'kernel', method: 'storage.queryBars', phases: UNLOCKED },
  { caller: 'kernel', method: 'storage.saveBacktest', phases: UNLOCKED },
  { caller: 'kernel', method: 'sandbox.run', phases: UNLOCKED },

  // Services may only report to the monitor.
  { caller: 'auth', method: 'monitor.record', phases: ANY },
  { caller: 'storage', method: 'monitor.record', phases: ANY },
  { caller: 'sandbox', method: 'monitor.record', phases: ANY },
  { caller: 'integrity', method: 'monitor.record', phases: ANY },
];

const RULES = new Map<string, readonly Phase[]>(POLICY.map((rule) => [`${rule.caller} ${rule.method}`, rule.phases]));

/** Throws E_POLICY_DENIED unless `caller` may call `method` in `phase`. */
export function checkPolicy(caller: Caller, method: string, phase: Phase): void {
  const phases = RULES.get(`${caller} ${method}`);
  if (phases === undefined) {
    throw new BacktestrError('E_POLICY_DENIED', `${caller} may not call ${method}`, { caller, method, phase });
  }
  if (!phases.includes(phase)) {
    const needed = phases.length === 1 && phases[0] === 'unlocked' ? 'unlock the profile first' : 'lock the profile first';
    throw new BacktestrError('E_POLICY_DENIED', `${caller} may not call ${method} while ${phase}: ${needed}`, { caller, method, phase });
  }
}
