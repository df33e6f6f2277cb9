/**
 * Human form of the privilege audit for `backtestr audit ps`: one summary row per service, then
 * every item that is not ok and the exposure reasons. `--json` prints the records themselves.
 */
import type { UnreadableServiceAudit } from './audit-service-process';
import type { AuditItem, ServiceAudit } from './proc-audit';

const SUMMARY_ITEMS: readonly AuditItem[] = ['uid', 'cap-effective', 'cap-bounding', 'no-new-privs', 'seccomp-filters', 'dumpable', 'network-namespace', 'landlock', 'open-files-limit'];

export function isReadableAudit(audit: ServiceAudit | UnreadableServiceAudit): audit is ServiceAudit {
  return !('error' in audit);
}

/** Returns the header and rows of the summary table, for the CLI's formatTable. */
export function privilegeSummaryRows(audits: readonly (ServiceAudit | UnreadableServiceAudit)[]): { headers: string[]; rows: string[][] } {
  const headers = ['service', 'pid', ...SUMMARY_ITEMS, 'exposure', 'differences'];
  const rows = audits.map((audit) => {
    if (!isReadableAudit(audit)) return [audit.service, String(audit.pid), ...SUMMARY_ITEMS.map(() => '?'), '?', audit.error];
    const actual = (item: AuditItem) => {
      const found = audit.entries.find((candidate) => candidate.item === item);
      return found ? `${found.actual}${found.state === 'ok' ? '' : ` [${found.state}]`}` : '-';
    };
    return [audit.service, String(audit.pid), ...SUMMARY_ITEMS.map(actual), `${audit.exposure.score.toFixed(1)} ${audit.exposure.rating}`, String(audit.differences.length)];
  });
  return { headers, rows };
}

/** Lists, per service, each item that differs, is degraded or could not be read, and the exposure reasons. */
export function privilegeDetailLines(audits: readonly (ServiceAudit | UnreadableServiceAudit)[]): string[] {
  const lines: string[] = [];
  for (const audit of audits) {
    if (!isReadableAudit(audit)) continue;
    for (const entry of audit.entries) {
      if (entry.state !== 'ok') lines.push(`${audit.service}: ${entry.item} ${entry.state}: expected ${entry.expected}, holds ${entry.actual}`);
    }
    for (const reason of audit.exposure.reasons) lines.push(`${audit.service}: exposure +${reason.weight} ${reason.check}: ${reason.reason}`);
  }
  return lines;
}
