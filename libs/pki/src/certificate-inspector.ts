import { createHash } from 'node:crypto';
import { forge, ForgeCertificate, ForgeExtension } from './forge-adapter';
import { encodePem } from './der.util';
import { PkiErrorCode, PkiException } from './pki.exception';
import { siloIdFromUri, SILO_URI_PREFIX } from './silo-identity';
import { assertDate, certificateDer, commonNameOf, toForgeCertificate } from './x509.util';

/** What the hub and agent need to know about a certificate. */
export interface ParsedCertificate {
  /** Serial number, lowercase hex without leading zero octets (as OpenSSL prints it, lowercased). */
  serialHex: string;
  subjectCn: string | null;
  issuerCn: string | null;
  /** The silo id from the SAN URI `urn:tessera:silo:<id>`, or null for certificates without one (CA, server). */
  siloId: string | null;
  notBefore: Date;
  notAfter: Date;
  /** SHA-256 of the DER encoding, lowercase hex without separators. */
  fingerprintSha256: string;
  /** basicConstraints cA. */
  isCa: boolean;
  /** Names of the extKeyUsage purposes ('serverAuth', 'clientAuth', …; unknown ones as dotted OIDs); [] if absent. */
  extendedKeyUsage: string[];
  /** SAN dNSName entries. */
  dnsNames: string[];
  /** SAN iPAddress entries, textual. */
  ipAddresses: string[];
}

/** A certificate's validity period (RFC 5280 section 4.1.2.5); `ParsedCertificate` is one. */
export interface CertificateValidity {
  notBefore: Date;
  notAfter: Date;
}

export type ValidityStatus = 'not-yet-valid' | 'valid' | 'expired';

// id-kp purposes, RFC 5280 section 4.2.1.12.
const KEY_PURPOSES: Readonly<Record<string, string>> = {
  '1.3.6.1.5.5.7.3.1': 'serverAuth',
  '1.3.6.1.5.5.7.3.2': 'clientAuth',
  '1.3.6.1.5.5.7.3.3': 'codeSigning',
  '1.3.6.1.5.5.7.3.4': 'emailProtection',
  '1.3.6.1.5.5.7.3.8': 'timeStamping',
  '1.3.6.1.5.5.7.3.9': 'OCSPSigning',
};

function extendedKeyUsageOf(extension: ForgeExtension | null): string[] {
  if (extension?.value === undefined) return [];
  const sequence = forge.asn1.fromDer(extension.value);
  if (!Array.isArray(sequence.value)) {
    throw new PkiException(PkiErrorCode.CertificateMalformed, 'extKeyUsage is not a SEQUENCE of OIDs.');
  }
  return sequence.value.map((purpose) => {
    if (typeof purpose.value !== 'string') {
      throw new PkiException(PkiErrorCode.CertificateMalformed, 'extKeyUsage entry is not an OID.');
    }
    const oid = forge.asn1.derToOid(purpose.value);
    return KEY_PURPOSES[oid] ?? oid;
  });
}

function siloIdOf(cert: ForgeCertificate): string | null {
  const uris = (cert.getExtension('subjectAltName')?.altNames ?? [])
    .filter((name) => name.type === 6 && typeof name.value === 'string' && name.value.startsWith(SILO_URI_PREFIX))
    .map((name) => name.value as string);
  if (uris.length === 0) return null;
  const siloId = uris.length === 1 ? siloIdFromUri(uris[0]!) : null;
  if (siloId === null) {
    // An ambiguous or malformed silo identity must never be mapped to a silo.
    throw new PkiException(
      PkiErrorCode.CertificateMalformed,
      `Certificate has an invalid silo URI set: ${uris.join(',')}.`,
    );
  }
  return siloId;
}

/**
 * PEM for a certificate given as DER, e.g. `TLSSocket.getPeerCertificate().raw` on the hub's mTLS listener
 * (RFC 7468 section 5 textual encoding). Checks the DER framing; throws CERTIFICATE_MALFORMED.
 */
export function certificatePemFromDer(der: Uint8Array): string {
  const pem = encodePem(der, 'CERTIFICATE');
  certificateDer(pem);
  return pem;
}

/** SHA-256 fingerprint of a certificate: the hash of its DER encoding, lowercase hex (as pinned in enrollment). */
export function fingerprintSha256(certificatePem: string): string {
  return createHash('sha256').update(certificateDer(certificatePem)).digest('hex');
}

/** Reads the fields of an X.509 v3 certificate (RFC 5280 section 4.1) that Tessera uses. */
export function parseCertificate(certificatePem: string): ParsedCertificate {
  const cert = toForgeCertificate(certificatePem);
  const altNames = cert.getExtension('subjectAltName')?.altNames ?? [];
  return {
    serialHex: cert.serialNumber.toLowerCase().replace(/^(00)+(?=.)/, ''),
    subjectCn: commonNameOf(cert.subject),
    issuerCn: commonNameOf(cert.issuer),
    siloId: siloIdOf(cert),
    notBefore: cert.validity.notBefore,
    notAfter: cert.validity.notAfter,
    fingerprintSha256: fingerprintSha256(certificatePem),
    isCa: cert.getExtension('basicConstraints')?.cA === true,
    extendedKeyUsage: extendedKeyUsageOf(cert.getExtension('extKeyUsage')),
    dnsNames: altNames.filter((name) => name.type === 2).map((name) => name.value ?? ''),
    ipAddresses: altNames.filter((name) => name.type === 7).map((name) => name.ip ?? ''),
  };
}

/**
 * True when `caPem` is a CA certificate (basicConstraints cA, keyUsage keyCertSign when present) whose subject is
 * `certPem`'s issuer and whose key verifies `certPem`'s signature (RFC 5280 section 6.1.3 (a)(1) and (a)(4) for one
 * link; validity and revocation are separate checks). Uses node-forge's verifier.
 */
export function verifyIssuedBy(certPem: string, caPem: string): boolean {
  const cert = toForgeCertificate(certPem);
  const ca = toForgeCertificate(caPem);
  const keyUsage = ca.getExtension('keyUsage');
  if (ca.getExtension('basicConstraints')?.cA !== true || (keyUsage !== null && keyUsage.keyCertSign !== true)) {
    return false;
  }
  if (!ca.issued(cert)) return false;
  try {
    return ca.verify(cert);
  } catch (error) {
    // forge throws, rather than returning false, for signature algorithms it cannot compute: that is a "no".
    if (error instanceof Error) return false;
    throw error;
  }
}

/**
 * Where `now` falls in the validity period. Both bounds are inclusive (RFC 5280 section 4.1.2.5: "the period of time
 * from notBefore through notAfter, inclusive").
 */
export function validityStatus(cert: CertificateValidity, now: Date): ValidityStatus {
  assertDate(now);
  if (now.getTime() < cert.notBefore.getTime()) return 'not-yet-valid';
  if (now.getTime() > cert.notAfter.getTime()) return 'expired';
  return 'valid';
}

/**
 * True when a third or less of the certificate's lifetime (notAfter - notBefore, skew allowance included) remains
 * at `now`, or it has expired. Renewing then leaves a third of the lifetime (10 days of a 30-day certificate) for
 * retries before the silo loses its identity.
 */
export function renewalDue(cert: CertificateValidity, now: Date): boolean {
  assertDate(now);
  const lifetimeMs = cert.notAfter.getTime() - cert.notBefore.getTime();
  const remainingMs = cert.notAfter.getTime() - now.getTime();
  return 3 * remainingMs <= lifetimeMs;
}
