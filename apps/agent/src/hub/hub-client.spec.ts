import { randomUUID, X509Certificate } from 'node:crypto';
import {
  createCertificateAuthority,
  createCsr,
  generateKeyPair,
  issueServerCertificate,
  issueSiloCertificate,
  type CertificateAuthority,
} from '@tessera/pki';
import { HubErrorCode } from '@tessera/protocol';
import { beforeAll, describe, expect, it } from 'vitest';
import { AgentErrorCode } from '../agent.error';
import { CERTIFICATE_CLOCK_TOLERANCE_MS, hubCodeOf, refusal, refusalUnderClockSkew } from './hub-client';

const HOUR = 3_600_000;
const URL_ = 'https://127.0.0.1:8443/silo/v1/studies';

let ca: CertificateAuthority;
let other: CertificateAuthority;
/** The enrolled hub's server certificate, issued now by `ca`. */
let hubLeaf: X509Certificate;
let issuedAt: number;

beforeAll(() => {
  issuedAt = Date.now();
  ca = createCertificateAuthority({ commonName: 'Enrolled hub CA', validityDays: 30, modulusBits: 2048 });
  other = createCertificateAuthority({ commonName: 'Enrolled hub CA', validityDays: 30, modulusBits: 2048 });
  const issued = issueServerCertificate({ ca, hostnames: ['localhost'], ips: ['127.0.0.1'], validityDays: 7 });
  hubLeaf = new X509Certificate(issued.certificatePem);
});

function judge(leaf: X509Certificate, nowMs: number, hostMismatch: Error | null = null, caPem = ca.certificatePem) {
  return refusalUnderClockSkew({ leaf, host: '127.0.0.1', hostMismatch }, caPem, new Date(nowMs), URL_);
}

describe('refusalUnderClockSkew: the clock', () => {
  it.each([
    { label: '3 h behind (the hub and its CA not yet valid)', offsetMs: -3 * HOUR },
    { label: '90 s behind', offsetMs: -90_000 },
    { label: '23 h behind', offsetMs: -23 * HOUR },
    { label: "3 h past the certificate's end", offsetMs: 7 * 24 * HOUR + 3 * HOUR },
  ])('accepts the enrolled hub when this host is $label', ({ offsetMs }) => {
    expect(judge(hubLeaf, issuedAt + offsetMs)).toBeNull();
  });

  it('refuses beyond the tolerance, naming the clock, the window and how far off it is', () => {
    // notBefore is issuedAt − 5 min (floored to the second): 25 h before issuance is ≥ 24 h 55 min before it.
    const early = judge(hubLeaf, issuedAt - 25 * HOUR);
    expect(early?.code).toBe(AgentErrorCode.HUB_NOT_TRUSTED);
    expect(early?.message).toMatch(
      /^This host's clock appears to be at least 24 h 55 min \(\d+ s\) behind: the hub's certificate is valid from \S+ to \S+ and this host's clock reads \S+, beyond the tolerance of 24 h 0 min/,
    );

    const late = judge(hubLeaf, issuedAt + 7 * 24 * HOUR + 30 * HOUR);
    expect(late?.message).toMatch(
      /^This host's clock appears to be at least 30 h 0 min \(\d+ s\) ahead, or the hub's certificate was not renewed/,
    );
  });

  it("holds the tolerance to the second at the certificate's end", () => {
    const notAfter = Date.parse(hubLeaf.validTo);
    expect(judge(hubLeaf, notAfter + CERTIFICATE_CLOCK_TOLERANCE_MS)).toBeNull();
    expect(judge(hubLeaf, notAfter + CERTIFICATE_CLOCK_TOLERANCE_MS + 1_000)).not.toBeNull();
  });
});

describe('refusalUnderClockSkew: everything but the clock is verified again', () => {
  it('refuses a certificate of another CA, even one with the same name, as not the enrolled hub', () => {
    const foreign = new X509Certificate(
      issueServerCertificate({ ca: other, hostnames: ['localhost'], ips: ['127.0.0.1'], validityDays: 7 })
        .certificatePem,
    );
    const refusal = judge(foreign, issuedAt - HOUR);
    expect(refusal?.code).toBe(AgentErrorCode.HUB_NOT_TRUSTED);
    expect(refusal?.message).toContain('is not the hub this agent was enrolled with');
    expect(refusal?.message).toContain('not issued by the pinned hub CA');
  });

  it('refuses when nothing is pinned', () => {
    expect(judge(hubLeaf, issuedAt - HOUR, null, '')?.message).toContain('not issued by the pinned hub CA');
  });

  it('accepts the enrolled hub when its CA is one of several pinned', () => {
    expect(judge(hubLeaf, issuedAt - HOUR, null, other.certificatePem + ca.certificatePem)).toBeNull();
  });

  it("refuses a silo's client certificate from the same CA: a silo cannot pose as the hub", () => {
    const siloId = randomUUID();
    const keys = generateKeyPair({ modulusBits: 2048 });
    const silo = issueSiloCertificate({ ca, csr: createCsr({ privateKeyPem: keys.privateKeyPem, siloId }), siloId });
    const refusal = judge(new X509Certificate(silo.certificatePem), issuedAt - HOUR);
    expect(refusal?.message).toContain('not a TLS server certificate');
  });

  it('refuses the CA certificate itself presented as the server certificate', () => {
    expect(judge(new X509Certificate(ca.certificatePem), issuedAt - HOUR)?.message).toContain(
      'not a TLS server certificate',
    );
  });

  it('refuses a certificate that does not name the host', () => {
    const mismatch = Object.assign(new Error("Hostname/IP does not match certificate's altnames"), {
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    });
    const refusal = judge(hubLeaf, issuedAt - HOUR, mismatch);
    expect(refusal?.code).toBe(AgentErrorCode.HUB_NOT_TRUSTED);
    expect(refusal?.message).toMatch(/^The hub's certificate does not name 127\.0\.0\.1/);
  });
});

describe("refusal: the hub's answer with its code", () => {
  it('carries the code of the contract for callers to branch on', () => {
    const err = refusal(
      {
        status: 409,
        body: { error: HubErrorCode.RENEWAL_PENDING, message: 'a renewal is pending', correlationId: 'c' },
      },
      'the certificate renewal',
    );
    expect(err).toMatchObject({
      code: AgentErrorCode.HUB_REFUSED,
      httpStatus: 409,
      hubCode: HubErrorCode.RENEWAL_PENDING,
      message: 'The hub refused the certificate renewal: a renewal is pending',
    });
  });

  it("keeps a newer hub's code as named, and names none for a body that is not the hub's", () => {
    expect(hubCodeOf({ error: 'SOME_NEWER_CODE', message: 'm' })).toBe('SOME_NEWER_CODE');
    expect(hubCodeOf({ error: 'not a code' })).toBeUndefined();
    expect(hubCodeOf('<html>502 Bad Gateway</html>')).toBeUndefined();
    expect(refusal({ status: 502, body: '<html>502 Bad Gateway</html>' }, 'the enrollment')).toMatchObject({
      hubCode: undefined,
      message: 'The hub refused the enrollment: HTTP 502',
    });
  });
});
