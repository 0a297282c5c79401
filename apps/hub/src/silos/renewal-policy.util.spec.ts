import { describe, expect, it } from 'vitest';
import { HubErrorCode } from '../common/hub.exception';
import {
  RENEWAL_MIN_INTERVAL_MS,
  RENEWAL_PENDING_GRACE_MS,
  renewalVerdict,
  type RenewalCertificate,
  type RenewalVerdict,
} from './renewal-policy.util';

const DAY = 86_400_000;
const NOW = new Date('2025-06-01T12:00:00Z');
let serials = 0;

/** A certificate of 30 days issued `ageMs` before NOW, active and used unless told otherwise. */
function certificate(ageMs: number, over: Partial<RenewalCertificate> = {}): RenewalCertificate {
  const createdAt = new Date(NOW.getTime() - ageMs);
  serials += 1;
  return {
    serial: `c${serials}`,
    lineageId: 'lineage-1',
    status: 'active',
    issuedVia: 'enrollment',
    notBefore: createdAt,
    notAfter: new Date(createdAt.getTime() + 30 * DAY),
    firstUsedAt: createdAt,
    revocationReason: null,
    publicKeySha256: `key-${serials}`,
    createdAt,
    ...over,
  };
}

function verdict(presenting: RenewalCertificate, others: RenewalCertificate[] = [], key = 'fresh-key'): RenewalVerdict {
  return renewalVerdict({ presenting, siloCertificates: [presenting, ...others], requestedKeySha256: key, now: NOW });
}

function refusal(v: RenewalVerdict): { kind: string; code: HubErrorCode } | 'allowed' {
  return v.allowed ? 'allowed' : { kind: v.kind, code: v.code };
}

describe('renewalVerdict', () => {
  it('allows the first renewal of a fresh enrollment and of a due certificate', () => {
    expect(verdict(certificate(DAY))).toEqual({ allowed: true, abandoned: [] });
    expect(verdict(certificate(21 * DAY))).toEqual({ allowed: true, abandoned: [] });
  });

  it('refuses a certificate that is no longer active, naming why', () => {
    const revoked = verdict(certificate(DAY, { status: 'revoked', revocationReason: 'key leaked' }));
    expect(refusal(revoked)).toEqual({ kind: 'not-current', code: HubErrorCode.SILO_IDENTITY_REFUSED });
    expect(revoked.allowed || revoked.message).toContain('revoked: key leaked');
    const superseded = verdict(certificate(DAY, { status: 'superseded' }));
    expect(refusal(superseded)).toEqual({ kind: 'not-current', code: HubErrorCode.SILO_IDENTITY_REFUSED });
  });

  it('refuses a key this silo already had certified, in this lineage or an older one', () => {
    const current = certificate(21 * DAY);
    expect(refusal(verdict(current, [], current.publicKeySha256))).toEqual({
      kind: 'key-reused',
      code: HubErrorCode.CSR_REJECTED,
    });
    const old = certificate(90 * DAY, { lineageId: 'lineage-0', status: 'revoked' });
    const v = verdict(current, [old], old.publicKeySha256);
    expect(refusal(v)).toEqual({ kind: 'key-reused', code: HubErrorCode.CSR_REJECTED });
    expect(v.allowed || v.message).toContain(old.serial);
  });

  it('refuses a second renewal while the first renewed certificate is unused and recent', () => {
    const current = certificate(21 * DAY);
    const unused = certificate(RENEWAL_PENDING_GRACE_MS - 1000, { issuedVia: 'renewal', firstUsedAt: null });
    const v = verdict(current, [unused]);
    expect(refusal(v)).toEqual({ kind: 'pending', code: HubErrorCode.RENEWAL_PENDING });
    expect(v.allowed || v.message).toContain(unused.serial);
  });

  it('lets a due certificate renew again once an unused renewal is older than the grace time, superseding it', () => {
    const current = certificate(21 * DAY);
    const lost = certificate(RENEWAL_PENDING_GRACE_MS + 1000, { issuedVia: 'renewal', firstUsedAt: null });
    expect(verdict(current, [lost])).toEqual({ allowed: true, abandoned: [lost.serial] });
  });

  it('ignores unused certificates of other lineages (they were revoked at re-enrollment)', () => {
    const current = certificate(21 * DAY);
    const other = certificate(1000, { issuedVia: 'renewal', firstUsedAt: null, lineageId: 'lineage-0' });
    expect(verdict(current, [other])).toEqual({ allowed: true, abandoned: [] });
  });

  it('limits renewals to one per interval unless the presented certificate is due', () => {
    const renewedRecently = certificate(RENEWAL_MIN_INTERVAL_MS - 60_000, { issuedVia: 'renewal' });
    const v = verdict(renewedRecently);
    expect(refusal(v)).toEqual({ kind: 'rate-limited', code: HubErrorCode.RENEWAL_RATE_LIMITED });
    expect(v.allowed || v.message).toMatch(/Retry after \d{4}-/);
    // Past the interval, a not-yet-due certificate may renew (the operator's `renew --force`).
    expect(verdict(certificate(RENEWAL_MIN_INTERVAL_MS + 60_000, { issuedVia: 'renewal' })).allowed).toBe(true);
    // A due certificate is never held back by the interval: the agent's schedule always passes.
    const dueButRecent = certificate(RENEWAL_MIN_INTERVAL_MS - 60_000, {
      issuedVia: 'renewal',
      notBefore: new Date(NOW.getTime() - 21 * DAY),
      notAfter: new Date(NOW.getTime() + 9 * DAY),
    });
    expect(verdict(dueButRecent).allowed).toBe(true);
  });

  it('never blocks the agent’s own schedule: renewing when due, every time, over a year', () => {
    // The agent renews when a third of the lifetime remains (renewalDue): day 20 of each 30-day certificate.
    const start = NOW.getTime();
    const issue = (at: number, issuedVia: 'enrollment' | 'renewal', n: number): RenewalCertificate => ({
      ...certificate(0, { issuedVia }),
      serial: `year-${n}`,
      publicKeySha256: `year-key-${n}`,
      notBefore: new Date(at - 5 * 60_000),
      notAfter: new Date(at + 30 * DAY),
      createdAt: new Date(at),
      firstUsedAt: new Date(at + 1000),
    });
    let presenting = issue(start, 'enrollment', 0);
    const held: RenewalCertificate[] = [];
    for (let n = 1; n <= 18; n += 1) {
      const at = presenting.notAfter.getTime() - 10 * DAY;
      const v = renewalVerdict({
        presenting,
        siloCertificates: [...held, presenting],
        requestedKeySha256: `year-key-${n}`,
        now: new Date(at),
      });
      expect(v).toEqual({ allowed: true, abandoned: [] });
      held.push({ ...presenting, status: 'superseded' });
      presenting = issue(at, 'renewal', n);
    }
  });
});
