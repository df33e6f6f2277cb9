/** The security event for a profile file that failed verification. */
import type { BacktestrError } from '../../protocol/errors';
import type { ServiceContext } from '../runtime/types';

/** Sends a critical `storage.integrity_failed` event with the error's details (file and reason). */
export function reportIntegrityFailure(ctx: ServiceContext, error: BacktestrError): void {
  ctx.securityEvent({ type: 'storage.integrity_failed', severity: 'critical', details: { ...error.details } });
}
