import { createHash, createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthority } from './certificate-authority';
import { parseCertificate, renewalDue, validityStatus, verifyIssuedBy } from './certificate-inspector';
import { issueServerCertificate, issueSiloCertificate } from './certificate-issuer';
import { createCsr } from './csr';
import { generateKeyPair, KeyPairPem } from './key-pair';
import { PkiErrorCode } from './pki.exception';
import {
  buildCa,
  buildRawCsr,
  MS_PER_DAY_FOR_TESTS,
  newSiloId,
  nodeX509,
  refusalCode,
  sanUris,
} from './pki-fixtures.test-util';
import { CLOCK_SKEW_ALLOWANCE_MS, toForgeCertificate } from './x509.util';

const DAY = MS_PER_DAY_FOR_TESTS;

describe('issueSiloCertificate', () => {
  let ca: CertificateAuthority;
  let otherCa: CertificateAuthority;
  let siloKey: KeyPairPem;
  // The CA is backdated two years so certificates can be issued "in the past" for expiry tests.
  const caBirth = new Date(Date.now() - 730 * DAY);

  beforeAll(() => {
    ca = buildCa({ now: caBirth, validityDays: 3650 });
    otherCa = buildCa({ commonName: 'Some Other CA' });
    siloKey = generateKeyPair();
  });

  function issueFor(siloId: string, validityDays?: number, now?: Date) {
    const csr = createCsr({ privateKeyPem: siloKey.privateKeyPem, siloId });
    return issueSiloCertificate({ ca, csr, siloId, validityDays, now });
  }

  it('issues a client certificate that OpenSSL (via Node) chains to the CA', () => {
    const siloId = newSiloId();
    const issued = issueFor(siloId);
    const leaf = nodeX509(issued.certificatePem);
    const root = nodeX509(ca.certificatePem);

    expect(leaf.checkIssued(root)).toBe(true);
    expect(leaf.verify(root.publicKey)).toBe(true);
    expect(leaf.verify(nodeX509(otherCa.certificatePem).publicKey)).toBe(false);
    expect(leaf.ca).toBe(false);
    expect(leaf.subject).toBe(`CN=${siloId}`);
    expect(leaf.issuer).toBe('CN=Tessera Test Silo CA');
    expect(leaf.subjectAltName).toBe(`URI:urn:tessera:silo:${siloId}`);
    // Node names the extKeyUsage list `keyUsage`.
    expect(leaf.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(leaf.publicKey.export({ type: 'spki', format: 'pem' })).toBe(siloKey.publicKeyPem);
    expect(leaf.serialNumber.toLowerCase()).toBe(issued.serialHex);
    expect(leaf.fingerprint256.replaceAll(':', '').toLowerCase()).toBe(issued.fingerprintSha256);
    expect(issued.publicKeySha256).toBe(
      createHash('sha256')
        .update(leaf.publicKey.export({ type: 'spki', format: 'der' }))
        .digest('hex'),
    );
    expect(leaf.checkHost('localhost')).toBeUndefined();

    expect(verifyIssuedBy(issued.certificatePem, ca.certificatePem)).toBe(true);
    expect(verifyIssuedBy(issued.certificatePem, otherCa.certificatePem)).toBe(false);
  });

  it('sets the RFC 5280 end-entity profile with the right criticality', () => {
    const issued = issueFor(newSiloId());
    const cert = toForgeCertificate(issued.certificatePem);
    const caCert = toForgeCertificate(ca.certificatePem);
    expect(cert.getExtension('basicConstraints')).toMatchObject({ critical: true, cA: false });
    expect(cert.getExtension('basicConstraints')?.pathLenConstraint).toBeUndefined();
    expect(cert.getExtension('keyUsage')).toMatchObject({
      critical: true,
      digitalSignature: true,
      keyEncipherment: true,
      keyCertSign: false,
      cRLSign: false,
    });
    expect(cert.getExtension('extKeyUsage')).toMatchObject({ critical: false, clientAuth: true });
    expect(cert.getExtension('extKeyUsage')?.serverAuth).toBeUndefined();
    expect(cert.getExtension('subjectKeyIdentifier')?.subjectKeyIdentifier).toBe(
      cert.generateSubjectKeyIdentifier().toHex(),
    );
    // AKI = SEQUENCE { [0] keyIdentifier } with the CA's SKI (RFC 5280 section 4.2.1.1).
    const aki = cert.getExtension('authorityKeyIdentifier')?.value ?? '';
    expect(Buffer.from(aki, 'latin1').subarray(4).toString('hex')).toBe(
      caCert.getExtension('subjectKeyIdentifier')?.subjectKeyIdentifier,
    );
    expect(cert.signatureOid).toBe('1.2.840.113549.1.1.11'); // sha256WithRSAEncryption
  });

  it('round-trips silo id, validity and extensions for arbitrary silo ids and lifetimes (property)', () => {
    fc.assert(
      fc.property(
        fc.uuid(),
        fc.integer({ min: 1, max: 397 }),
        fc.integer({ min: 0, max: 365 * DAY }),
        (siloId, validityDays, ageMs) => {
          const now = new Date(Date.now() - ageMs);
          const issued = issueFor(siloId, validityDays, now);
          const parsed = parseCertificate(issued.certificatePem);
          const second = Math.floor(now.getTime() / 1000) * 1000;
          expect(parsed).toMatchObject({
            siloId,
            subjectCn: siloId,
            issuerCn: 'Tessera Test Silo CA',
            isCa: false,
            extendedKeyUsage: ['clientAuth'],
            dnsNames: [],
            ipAddresses: [],
            serialHex: issued.serialHex,
            fingerprintSha256: issued.fingerprintSha256,
          });
          expect(parsed.notBefore.getTime()).toBe(second - CLOCK_SKEW_ALLOWANCE_MS);
          expect(parsed.notAfter.getTime()).toBe(second + validityDays * DAY);
          expect(issued.notAfter.getTime()).toBe(parsed.notAfter.getTime());
          expect(new Date(nodeX509(issued.certificatePem).validTo).getTime()).toBe(parsed.notAfter.getTime());
        },
      ),
      { numRuns: 25 },
    );
  });

  it('defaults to 30 days from now', () => {
    const before = Date.now();
    const parsed = parseCertificate(issueFor(newSiloId()).certificatePem);
    expect(parsed.notAfter.getTime() - parsed.notBefore.getTime()).toBe(30 * DAY + CLOCK_SKEW_ALLOWANCE_MS);
    expect(parsed.notBefore.getTime()).toBeGreaterThanOrEqual(before - CLOCK_SKEW_ALLOWANCE_MS - 1000);
  });

  it('issues backdated certificates that are expired or due for renewal today', () => {
    const expired = parseCertificate(issueFor(newSiloId(), 30, new Date(Date.now() - 40 * DAY)).certificatePem);
    expect(validityStatus(expired, new Date())).toBe('expired');
    expect(renewalDue(expired, new Date())).toBe(true);
    const x509 = nodeX509(issueFor(newSiloId(), 30, new Date(Date.now() - 40 * DAY)).certificatePem);
    expect(new Date(x509.validTo).getTime()).toBeLessThan(Date.now());

    const aging = parseCertificate(issueFor(newSiloId(), 30, new Date(Date.now() - 21 * DAY)).certificatePem);
    expect(validityStatus(aging, new Date())).toBe('valid');
    expect(renewalDue(aging, new Date())).toBe(true);

    const fresh = parseCertificate(issueFor(newSiloId(), 30, new Date(Date.now() - 1 * DAY)).certificatePem);
    expect(renewalDue(fresh, new Date())).toBe(false);
  });

  it('never lets a certificate outlive its CA', () => {
    const shortCa = buildCa({ validityDays: 10, key: siloKey });
    const siloId = newSiloId();
    const csr = createCsr({ privateKeyPem: siloKey.privateKeyPem, siloId });
    const issued = issueSiloCertificate({ ca: shortCa, csr, siloId, validityDays: 30 });
    expect(issued.notAfter.getTime()).toBe(parseCertificate(shortCa.certificatePem).notAfter.getTime());
  });

  it('refuses to issue when the CA is not valid at the issuance time', () => {
    const siloId = newSiloId();
    const csr = createCsr({ privateKeyPem: siloKey.privateKeyPem, siloId });
    const beforeCa = new Date(caBirth.getTime() - 1 * DAY);
    expect(refusalCode(() => issueSiloCertificate({ ca, csr, siloId, now: beforeCa }))).toBe(PkiErrorCode.CaInvalid);
  });

  it('refuses a CSR for another silo, a CA-requesting CSR, a leaf posing as CA, and bad validity', () => {
    const siloId = newSiloId();
    const csr = createCsr({ privateKeyPem: siloKey.privateKeyPem, siloId });
    const caCsr = buildRawCsr({
      privateKeyPem: siloKey.privateKeyPem,
      commonName: siloId,
      extensions: [sanUris(`urn:tessera:silo:${siloId}`), { name: 'basicConstraints', cA: true }],
    });
    const leaf = issueSiloCertificate({ ca, csr, siloId });
    const leafAsCa = { certificatePem: leaf.certificatePem, privateKeyPem: siloKey.privateKeyPem };

    expect(refusalCode(() => issueSiloCertificate({ ca, csr, siloId: newSiloId() }))).toBe(
      PkiErrorCode.CsrIdentityMismatch,
    );
    expect(refusalCode(() => issueSiloCertificate({ ca, csr: caCsr, siloId }))).toBe(PkiErrorCode.CsrRequestsCa);
    expect(refusalCode(() => issueSiloCertificate({ ca: leafAsCa, csr, siloId }))).toBe(PkiErrorCode.CaInvalid);
    expect(refusalCode(() => issueSiloCertificate({ ca, csr, siloId, validityDays: 0 }))).toBe(
      PkiErrorCode.ArgumentInvalid,
    );
    expect(verifyIssuedBy(issueSiloCertificate({ ca, csr, siloId }).certificatePem, leaf.certificatePem)).toBe(false);
  });
});

describe('issueServerCertificate', () => {
  let ca: CertificateAuthority;

  beforeAll(() => {
    ca = buildCa();
  });

  it('issues a serverAuth certificate whose SANs OpenSSL matches for localhost and 127.0.0.1', () => {
    const server = issueServerCertificate({
      ca,
      hostnames: ['localhost', 'hub.tessera.example'],
      ips: ['127.0.0.1', '::1'],
    });
    const x509 = new X509Certificate(server.certificatePem);
    expect(x509.checkIssued(new X509Certificate(ca.certificatePem))).toBe(true);
    expect(x509.verify(new X509Certificate(ca.certificatePem).publicKey)).toBe(true);
    expect(x509.checkHost('localhost')).toBe('localhost');
    expect(x509.checkHost('hub.tessera.example')).toBe('hub.tessera.example');
    expect(x509.checkHost('evil.example')).toBeUndefined();
    expect(x509.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(x509.checkIP('::1')).toBe('::1');
    expect(x509.checkIP('10.0.0.1')).toBeUndefined();
    expect(x509.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(x509.checkPrivateKey(createPrivateKey(server.privateKeyPem))).toBe(true);

    const parsed = parseCertificate(server.certificatePem);
    expect(parsed).toMatchObject({
      subjectCn: 'localhost',
      siloId: null,
      isCa: false,
      extendedKeyUsage: ['serverAuth'],
      dnsNames: ['localhost', 'hub.tessera.example'],
      ipAddresses: ['127.0.0.1', '::1'],
    });
    expect(parsed.notAfter.getTime() - parsed.notBefore.getTime()).toBe(90 * DAY + CLOCK_SKEW_ALLOWANCE_MS);
  });

  it('uses the first IP as CN when there are no host names', () => {
    const server = issueServerCertificate({ ca, hostnames: [], ips: ['127.0.0.1'], validityDays: 7 });
    expect(parseCertificate(server.certificatePem).subjectCn).toBe('127.0.0.1');
  });

  it('certifies a key made ahead (the public key derived from it) and refuses a weak one', () => {
    const made = generateKeyPair();
    const other = generateKeyPair();
    const server = issueServerCertificate({
      ca,
      hostnames: ['localhost'],
      ips: [],
      privateKeyPem: made.privateKeyPem,
    });
    const x509 = new X509Certificate(server.certificatePem);
    expect(x509.checkPrivateKey(createPrivateKey(made.privateKeyPem))).toBe(true);
    expect(x509.checkPrivateKey(createPrivateKey(other.privateKeyPem))).toBe(false);
    expect(server.privateKeyPem).toBe(made.privateKeyPem);
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    });
    expect(
      refusalCode(() =>
        issueServerCertificate({ ca, hostnames: ['localhost'], ips: [], privateKeyPem: weak.toString() }),
      ),
    ).toBe(PkiErrorCode.KeyTooWeak);
  });

  it('refuses empty, invalid or wildcard names and invalid IPs', () => {
    const attempts: Array<[string[], string[]]> = [
      [[], []],
      [['*.example.org'], []],
      [['Localhost'], []],
      [['-bad.example'], []],
      [['a'.repeat(64)], []],
      [[], ['256.0.0.1']],
      [[], ['localhost']],
    ];
    for (const [hostnames, ips] of attempts) {
      expect(refusalCode(() => issueServerCertificate({ ca, hostnames, ips }))).toBe(PkiErrorCode.ArgumentInvalid);
    }
  });
});
