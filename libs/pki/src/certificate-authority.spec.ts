import { beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthority, createCertificateAuthority, loadCertificateAuthority } from './certificate-authority';
import { parseCertificate } from './certificate-inspector';
import { generateKeyPair, KeyPairPem } from './key-pair';
import { PkiErrorCode } from './pki.exception';
import { buildCa, MS_PER_DAY_FOR_TESTS, nodeX509, refusalCode } from './pki-fixtures.test-util';
import { toForgeCertificate, CLOCK_SKEW_ALLOWANCE_MS } from './x509.util';

describe('createCertificateAuthority', () => {
  let key: KeyPairPem;

  beforeAll(() => {
    key = generateKeyPair();
  });

  it('makes a self-signed CA with critical CA:true/pathLen 0 and keyCertSign+cRLSign, 3072-bit by default', () => {
    const now = new Date('2026-03-01T12:00:00.750Z');
    const ca = createCertificateAuthority({ commonName: 'Tessera Silo CA', validityDays: 3650, now });

    // Independent reading by OpenSSL through Node.
    const x509 = nodeX509(ca.certificatePem);
    expect(x509.ca).toBe(true);
    expect(x509.subject).toBe('CN=Tessera Silo CA');
    expect(x509.issuer).toBe('CN=Tessera Silo CA');
    expect(x509.checkIssued(x509)).toBe(true);
    expect(x509.verify(x509.publicKey)).toBe(true);
    expect(x509.publicKey.asymmetricKeyDetails?.modulusLength).toBe(3072);
    expect(new Date(x509.validFrom).getTime()).toBe(Date.parse('2026-03-01T12:00:00Z') - CLOCK_SKEW_ALLOWANCE_MS);
    expect(new Date(x509.validTo).getTime()).toBe(Date.parse('2026-03-01T12:00:00Z') + 3650 * MS_PER_DAY_FOR_TESTS);

    // Extension flags and criticality, as decoded by forge.
    const cert = toForgeCertificate(ca.certificatePem);
    expect(cert.getExtension('basicConstraints')).toMatchObject({ critical: true, cA: true, pathLenConstraint: 0 });
    expect(cert.getExtension('keyUsage')).toMatchObject({
      critical: true,
      keyCertSign: true,
      cRLSign: true,
      digitalSignature: false,
    });
    const ski = cert.getExtension('subjectKeyIdentifier')?.subjectKeyIdentifier;
    expect(ski).toMatch(/^[0-9a-f]{40}$/);
    expect(cert.generateSubjectKeyIdentifier().toHex()).toBe(ski);

    const parsed = parseCertificate(ca.certificatePem);
    expect(parsed).toMatchObject({ isCa: true, subjectCn: 'Tessera Silo CA', issuerCn: 'Tessera Silo CA' });
    expect(parsed.siloId).toBeNull();
  });

  it('draws a fresh positive serial of at most 128 bits each time', () => {
    const serials = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const x509 = nodeX509(buildCa({ key }).certificatePem);
      const serial = BigInt(`0x${x509.serialNumber}`);
      expect(serial > 0n && serial < 2n ** 128n).toBe(true);
      serials.add(x509.serialNumber);
    }
    expect(serials.size).toBe(5);
  });

  it('keeps a non-ASCII common name intact (UTF8String)', () => {
    const ca = buildCa({ commonName: 'Hôpital Universitaire CA', key });
    expect(parseCertificate(ca.certificatePem).subjectCn).toBe('Hôpital Universitaire CA');
    expect(nodeX509(ca.certificatePem).subject).toBe('CN=Hôpital Universitaire CA');
  });

  it('refuses empty or overlong names, bad validity and weak keys', () => {
    const attempts: Array<[() => unknown, PkiErrorCode]> = [
      [() => buildCa({ commonName: '', key }), PkiErrorCode.ArgumentInvalid],
      [() => buildCa({ commonName: 'x'.repeat(65), key }), PkiErrorCode.ArgumentInvalid],
      [() => buildCa({ commonName: 'a\nb', key }), PkiErrorCode.ArgumentInvalid],
      [() => buildCa({ validityDays: 0, key }), PkiErrorCode.ArgumentInvalid],
      [() => buildCa({ validityDays: 1.5, key }), PkiErrorCode.ArgumentInvalid],
      [() => buildCa({ validityDays: 3651, key }), PkiErrorCode.ArgumentInvalid],
      [() => buildCa({ now: new Date(Number.NaN), key }), PkiErrorCode.ArgumentInvalid],
      [() => generateKeyPair({ modulusBits: 1024 }), PkiErrorCode.KeyTooWeak],
      [
        () => createCertificateAuthority({ commonName: 'CA', validityDays: 10, privateKeyPem: 'nope' }),
        PkiErrorCode.KeyMalformed,
      ],
    ];
    for (const [attempt, code] of attempts) expect(refusalCode(attempt)).toBe(code);
  });
});

describe('loadCertificateAuthority', () => {
  let ca: CertificateAuthority;
  let stranger: KeyPairPem;

  beforeAll(() => {
    ca = buildCa();
    stranger = generateKeyPair();
  });

  it('refuses a CA whose key does not match its certificate', () => {
    const load = () => loadCertificateAuthority({ ...ca, privateKeyPem: stranger.privateKeyPem });
    expect(refusalCode(load)).toBe(PkiErrorCode.CaInvalid);
    expect(load).toThrow(/does not match/);
  });

  it('refuses unreadable CA material', () => {
    expect(refusalCode(() => loadCertificateAuthority({ ...ca, certificatePem: 'garbage' }))).toBe(
      PkiErrorCode.CaInvalid,
    );
  });
});
