import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthority } from './certificate-authority';
import {
  certificatePemFromDer,
  fingerprintSha256,
  parseCertificate,
  renewalDue,
  validityStatus,
  verifyIssuedBy,
} from './certificate-inspector';
import { issueSiloCertificate } from './certificate-issuer';
import { createCsr } from './csr';
import { decodePem, encodePem } from './der.util';
import { generateKeyPair, KeyPairPem } from './key-pair';
import { PkiErrorCode } from './pki.exception';
import { buildCa, newSiloId, nodeX509, refusalCode, selfSignedSiloCertificate } from './pki-fixtures.test-util';

describe('validityStatus and renewalDue', () => {
  const notBefore = new Date('2026-01-01T00:00:00Z');
  const notAfter = new Date('2026-01-31T00:00:00Z');
  const cert = { notBefore, notAfter };
  const at = (ms: number): Date => new Date(ms);

  it('treats both bounds as inside the validity period (RFC 5280 section 4.1.2.5)', () => {
    expect(validityStatus(cert, at(notBefore.getTime() - 1))).toBe('not-yet-valid');
    expect(validityStatus(cert, notBefore)).toBe('valid');
    expect(validityStatus(cert, notAfter)).toBe('valid');
    expect(validityStatus(cert, at(notAfter.getTime() + 1))).toBe('expired');
  });

  it('is due exactly when a third or less of the lifetime remains', () => {
    const third = (notAfter.getTime() - notBefore.getTime()) / 3; // 10 days, an integer number of ms
    expect(renewalDue(cert, at(notAfter.getTime() - third - 1))).toBe(false);
    expect(renewalDue(cert, at(notAfter.getTime() - third))).toBe(true);
    expect(renewalDue(cert, at(notAfter.getTime() + 1))).toBe(true);
    expect(renewalDue(cert, at(notBefore.getTime() - 1))).toBe(false);
  });

  it('agrees with the definition for arbitrary periods and instants (property)', () => {
    const ms = fc.integer({ min: 0, max: 4_000_000_000_000 });
    fc.assert(
      fc.property(ms, fc.integer({ min: 1, max: 400 * 86_400_000 }), ms, (start, lifetime, now) => {
        const period = { notBefore: at(start), notAfter: at(start + lifetime) };
        const status = validityStatus(period, at(now));
        expect(status).toBe(now < start ? 'not-yet-valid' : now > start + lifetime ? 'expired' : 'valid');
        expect(renewalDue(period, at(now))).toBe(start + lifetime - now <= lifetime / 3);
        // Renewal is always due before (or when) a certificate expires.
        if (status === 'expired') expect(renewalDue(period, at(now))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses an invalid clock reading', () => {
    expect(refusalCode(() => validityStatus(cert, new Date('nope')))).toBe(PkiErrorCode.ArgumentInvalid);
    expect(refusalCode(() => renewalDue(cert, new Date(Number.NaN)))).toBe(PkiErrorCode.ArgumentInvalid);
  });
});

describe('parseCertificate, fingerprintSha256, verifyIssuedBy', () => {
  let ca: CertificateAuthority;
  let siloKey: KeyPairPem;
  let siloId: string;
  let leafPem: string;

  beforeAll(() => {
    ca = buildCa();
    siloKey = generateKeyPair();
    siloId = newSiloId();
    const csr = createCsr({ privateKeyPem: siloKey.privateKeyPem, siloId });
    leafPem = issueSiloCertificate({ ca, csr, siloId }).certificatePem;
  });

  it('fingerprints the DER exactly as OpenSSL does', () => {
    for (const pem of [leafPem, ca.certificatePem]) {
      const expected = nodeX509(pem).fingerprint256.replaceAll(':', '').toLowerCase();
      expect(fingerprintSha256(pem)).toBe(expected);
      expect(fingerprintSha256(pem)).toMatch(/^[0-9a-f]{64}$/);
      // Line endings and surrounding whitespace do not change the DER, so they do not change the pin.
      expect(fingerprintSha256(`\n${pem.replaceAll('\n', '\r\n')}  `)).toBe(expected);
    }
  });

  it('rebuilds PEM from DER (as a TLS socket hands it over) and refuses broken DER', () => {
    const der = decodePem(leafPem, 'CERTIFICATE') ?? Buffer.alloc(0);
    expect(certificatePemFromDer(der)).toBe(leafPem);
    expect(refusalCode(() => certificatePemFromDer(der.subarray(1)))).toBe(PkiErrorCode.CertificateMalformed);
  });

  it('reports serial and validity as OpenSSL reads them', () => {
    const parsed = parseCertificate(leafPem);
    const x509 = nodeX509(leafPem);
    expect(parsed.serialHex).toBe(x509.serialNumber.toLowerCase());
    expect(parsed.notBefore.getTime()).toBe(Date.parse(x509.validFrom));
    expect(parsed.notAfter.getTime()).toBe(Date.parse(x509.validTo));
    expect(parsed.siloId).toBe(siloId);
  });

  it('refuses garbage, a CSR and truncated DER as CERTIFICATE_MALFORMED', () => {
    const der = decodePem(leafPem, 'CERTIFICATE');
    if (der === null) throw new Error('fixture is not PEM');
    const inputs = [
      '',
      'garbage',
      createCsr({ privateKeyPem: siloKey.privateKeyPem, siloId }),
      encodePem(der.subarray(0, der.length - 10), 'CERTIFICATE'),
      encodePem(Buffer.from('30030201ff', 'hex'), 'CERTIFICATE'),
    ];
    for (const input of inputs) {
      expect(refusalCode(() => parseCertificate(input))).toBe(PkiErrorCode.CertificateMalformed);
    }
    // fingerprintSha256 only needs well-framed DER (the last input is one SEQUENCE), so it refuses the first four.
    for (const input of inputs.slice(0, 4)) {
      expect(refusalCode(() => fingerprintSha256(input))).toBe(PkiErrorCode.CertificateMalformed);
    }
  });

  it('verifies only the real issuer, and rejects a tampered certificate', () => {
    expect(verifyIssuedBy(leafPem, ca.certificatePem)).toBe(true);
    expect(verifyIssuedBy(leafPem, buildCa({ key: siloKey }).certificatePem)).toBe(false);
    // Same CA name, different key: the name matches but the signature does not.
    expect(verifyIssuedBy(leafPem, buildCa({ commonName: 'Tessera Test Silo CA', key: siloKey }).certificatePem)).toBe(
      false,
    );
    expect(verifyIssuedBy(selfSignedSiloCertificate(siloKey, siloId), ca.certificatePem)).toBe(false);
    // A self-signed end-entity certificate is not a CA even for itself.
    const selfSigned = selfSignedSiloCertificate(siloKey, siloId);
    expect(verifyIssuedBy(selfSigned, selfSigned)).toBe(false);

    const der = Buffer.from(decodePem(leafPem, 'CERTIFICATE') ?? Buffer.alloc(0));
    const cnAt = der.indexOf(Buffer.from(siloId, 'latin1')); // first occurrence: the subject CN, in tbsCertificate
    der[cnAt] = der[cnAt] === 0x30 ? 0x31 : 0x30;
    const tampered = encodePem(der, 'CERTIFICATE');
    expect(verifyIssuedBy(tampered, ca.certificatePem)).toBe(false);
    expect(nodeX509(tampered).verify(nodeX509(ca.certificatePem).publicKey)).toBe(false);
  });
});
