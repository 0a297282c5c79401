import { renewalDue } from '@tessera/pki';
import { HubErrorCode } from '../common/hub.exception';
import type { CertificateStatus } from './silo-certificate.entity';

/**
 * How long a renewed certificate that was never used blocks another renewal, in ms. The agent switches to a renewed
 * certificate on its very next call, so only a crash between the hub's answer and the agent saving the new key leaves
 * one unused; after this time the lost certificate is superseded and a new renewal is allowed.
 */
export const RENEWAL_PENDING_GRACE_MS = 10 * 60_000;

/**
 * Least time between two renewals of one silo, in ms, unless the certificate presented is due for renewal (a third
 * or less of its lifetime left, `renewalDue`). The agent renews only when due, so this never delays its schedule; it
 * stops a caller from minting certificates back to back with a fresh one.
 */
export const RENEWAL_MIN_INTERVAL_MS = 60 * 60_000;

/** What the policy needs to know about each certificate the silo holds or held. */
export interface RenewalCertificate {
  serial: string;
  lineageId: string;
  status: CertificateStatus;
  issuedVia: 'enrollment' | 'renewal';
  notBefore: Date;
  notAfter: Date;
  firstUsedAt: Date | null;
  revocationReason: string | null;
  publicKeySha256: string;
  createdAt: Date;
}

export type RenewalRefusalKind = 'not-current' | 'key-reused' | 'pending' | 'rate-limited';

export type RenewalVerdict =
  | { allowed: true; /** Unused renewals older than the grace time, to supersede. */ abandoned: string[] }
  | { allowed: false; kind: RenewalRefusalKind; code: HubErrorCode; message: string };

export interface RenewalRequest {
  /** The certificate the request came with, as the database holds it under the silo's lock. */
  presenting: RenewalCertificate;
  /** Every certificate of the silo, in every lineage and status. */
  siloCertificates: RenewalCertificate[];
  /** SHA-256 of the SubjectPublicKeyInfo DER of the key in the CSR. */
  requestedKeySha256: string;
  now: Date;
}

function refused(kind: RenewalRefusalKind, code: HubErrorCode, message: string): RenewalVerdict {
  return { allowed: false, kind, code, message };
}

/**
 * Decides a renewal (issue 14 item 7). Refuses, in this order: a presenting certificate that is no longer active; a
 * key the silo already had certified (a renewal must bring a new key pair); a second renewal while a renewed
 * certificate of the same lineage is unused and younger than RENEWAL_PENDING_GRACE_MS (at most one outstanding
 * renewal); and a renewal within RENEWAL_MIN_INTERVAL_MS of the silo's last one, unless the presenting certificate
 * is due. Pure: the caller holds the silo's lock, so two concurrent renewals are decided one after the other.
 */
export function renewalVerdict(request: RenewalRequest): RenewalVerdict {
  const { presenting, siloCertificates, requestedKeySha256, now } = request;
  if (presenting.status !== 'active') {
    return refused(
      'not-current',
      HubErrorCode.SILO_IDENTITY_REFUSED,
      presenting.status === 'revoked'
        ? `This client certificate (serial ${presenting.serial}) was revoked: ${presenting.revocationReason ?? 'no reason given'}.`
        : `This client certificate (serial ${presenting.serial}) was replaced by a renewed one; renew with the newest.`,
    );
  }
  const sameKey = siloCertificates.find((c) => c.publicKeySha256 === requestedKeySha256);
  if (sameKey) {
    return refused(
      'key-reused',
      HubErrorCode.CSR_REJECTED,
      `The certificate request was refused: its key was already certified for this silo (certificate ` +
        `${sameKey.serial}); a renewal must bring a new key pair.`,
    );
  }
  const unused = siloCertificates.filter(
    (c) =>
      c.lineageId === presenting.lineageId &&
      c.serial !== presenting.serial &&
      c.issuedVia === 'renewal' &&
      c.status === 'active' &&
      c.firstUsedAt === null,
  );
  const pending = unused.find((c) => now.getTime() - c.createdAt.getTime() < RENEWAL_PENDING_GRACE_MS);
  if (pending) {
    const retryAt = new Date(pending.createdAt.getTime() + RENEWAL_PENDING_GRACE_MS);
    return refused(
      'pending',
      HubErrorCode.RENEWAL_PENDING,
      `Certificate ${pending.serial} was issued by a renewal at ${pending.createdAt.toISOString()} and has not been ` +
        `used yet: use it, or, if it was lost, renew again after ${retryAt.toISOString()}.`,
    );
  }
  const last = siloCertificates
    .filter((c) => c.issuedVia === 'renewal')
    .reduce<Date | null>((latest, c) => (latest && latest >= c.createdAt ? latest : c.createdAt), null);
  if (last && now.getTime() - last.getTime() < RENEWAL_MIN_INTERVAL_MS && !renewalDue(presenting, now)) {
    const retryAt = new Date(last.getTime() + RENEWAL_MIN_INTERVAL_MS);
    return refused(
      'rate-limited',
      HubErrorCode.RENEWAL_RATE_LIMITED,
      `This silo renewed a certificate at ${last.toISOString()}; renewals are limited to one per ` +
        `${RENEWAL_MIN_INTERVAL_MS / 60_000} minutes until the current certificate is due for renewal. ` +
        `Retry after ${retryAt.toISOString()}.`,
    );
  }
  return { allowed: true, abandoned: unused.map((c) => c.serial) };
}
