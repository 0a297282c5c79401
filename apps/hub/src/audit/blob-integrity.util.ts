import type { AuditTrail } from './audit-trail';
import type { BlobIntegrityError } from '../blobs/blob-store.exception';

/** A corrupted blob is recorded at most once per this interval (ms): agents polling for it cannot flood the trail. */
export const INTEGRITY_RECORD_INTERVAL_MS = 60 * 60 * 1000;

export interface IntegrityLog {
  error(message: string): void;
}

/**
 * What the hub does when a blob read finds bytes that no longer match the blob's name: an error line in the log
 * every time, and a `blob.integrity.failed` audit record naming the blob (at most once an hour per blob), so an
 * operator restores it from a backup and an auditor sees that a model or update was refused.
 */
export function integrityFailureReporter(
  audit: AuditTrail,
  log: IntegrityLog,
  now: () => number = Date.now,
): (err: BlobIntegrityError) => void {
  const recordedAt = new Map<string, number>();
  return (err) => {
    log.error(`blob integrity check failed: ${err.message}; the hub refuses to use or serve it`);
    const t = now();
    if (t - (recordedAt.get(err.hash) ?? -Infinity) < INTEGRITY_RECORD_INTERVAL_MS) return;
    recordedAt.set(err.hash, t);
    void audit
      .record({
        actor: { type: 'system', id: 'blob-store' },
        action: 'blob.integrity.failed',
        details: { blobSha256: err.hash, actualSha256: err.actualHash },
      })
      .catch((cause: unknown) =>
        log.error(`could not record the integrity failure of blob ${err.hash} in the audit trail: ${String(cause)}`),
      );
  };
}
