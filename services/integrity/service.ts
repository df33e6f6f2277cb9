/**
 * INTEGRITY: checks the installed build against build/manifest.json.
 *
 * Methods (the runtime checks params against each schema first):
 *   verify {} -> {ok: true, files: number}
 *             E_INTEGRITY, details {file, kind[, errno]} naming the first bad file in path order
 *
 * Kinds: modified, missing, unexpected, unreadable, manifest-unreadable, manifest-malformed
 * (defined in ops/manifest/manifest.ts). The check fails closed: without a valid manifest nothing
 * passes. Each failure also goes to the monitor as a critical `integrity.verify_failed` event.
 * NOTE: the manifest is unsigned in this version, so this check catches damage and edits to the
 * code files, but not an attacker who rewrites the manifest along with them.
 */
import * as path from 'node:path';
import { BacktestrError, type ErrorDetails } from '../../protocol/errors';
import { s } from '../../protocol/schema';
import type { MethodHandler, ServiceDefinition } from '../runtime/types';
import { readManifest, verifyManifest, type IntegrityFailure } from '../../ops/manifest/manifest';

const verify: MethodHandler<Record<string, never>, { ok: true; files: number }> = {
  params: s.object({}),
  async handle(_params, ctx) {
    const buildDir = path.resolve(ctx.installDir);

    const read = await readManifest(buildDir);
    const result = read.ok ? await verifyManifest(buildDir, read.manifest) : read;
    if (result.ok) {
      ctx.log.info({ event: 'verify_ok', files: result.files, installDir: buildDir }, 'build matches its manifest');
      return { ok: true, files: result.files };
    }

    const details = failureDetails(result);
    ctx.log.error({ event: 'verify_failed', ...details, installDir: buildDir }, 'build does not match its manifest');
    ctx.securityEvent({ type: 'integrity.verify_failed', severity: 'critical', details });
    throw new BacktestrError('E_INTEGRITY', `integrity check failed: ${result.kind} file ${result.file}; rebuild or reinstall`, details);
  },
};

function failureDetails(failure: IntegrityFailure): ErrorDetails {
  const details: ErrorDetails = { file: failure.file, kind: failure.kind };
  if (failure.errno !== undefined) details.errno = failure.errno;
  return details;
}

export const integrityService: ServiceDefinition = {
  name: 'integrity',
  methods: { verify },
};
