/**
 * Reads /proc for one running service and audits it against its policy. The kernel calls this
 * for `kernel.audit`, because the kernel may read its services' /proc entries. So
 * `backtestr audit ps` from a second terminal shows what the kernel reads.
 */
import type { ServiceName } from '../../services/runtime/types';
import { privilegePolicy } from './policy-table';
import { auditService, type AuditContext, type ServiceAudit } from './proc-audit';
import { readProcFacts } from './proc-read';

/** The audit of a process that could not be read (it exited between listing and reading). */
export interface UnreadableServiceAudit {
  service: ServiceName;
  pid: number;
  error: string;
}

export function auditServiceProcess(service: ServiceName, pid: number, context: AuditContext): ServiceAudit | UnreadableServiceAudit {
  try {
    return auditService(privilegePolicy(service), readProcFacts(pid), context);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return { service, pid, error: `process ${pid} is gone (${code})` };
    throw error;
  }
}
