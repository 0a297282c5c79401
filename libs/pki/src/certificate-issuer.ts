import { isIP } from 'node:net';
import { CertificateAuthority, LoadedCertificateAuthority, loadCertificateAuthority } from './certificate-authority';
import { fingerprintSha256 } from './certificate-inspector';
import { parseCsr } from './csr';
import { forge, ForgeAltName, ForgeExtension } from './forge-adapter';
import {
  DEFAULT_RSA_MODULUS_BITS,
  generateKeyPair,
  loadPrivateKey,
  publicKeyPemOf,
  toForgePublicKey,
} from './key-pair';
import { PkiErrorCode, PkiException } from './pki.exception';
import { siloUri } from './silo-identity';
import {
  assertDate,
  commonNameAttributes,
  decodedNameAttributes,
  forgeCertificateToPem,
  randomSerialHex,
  validityWindow,
} from './x509.util';

/** Default lifetime of a silo client certificate, in days: short, because agents renew automatically. */
export const DEFAULT_SILO_CERTIFICATE_DAYS = 30;
/** Default lifetime of the hub's TLS server certificate, in days. */
export const DEFAULT_SERVER_CERTIFICATE_DAYS = 90;

/** What the hub records about an issued certificate (serial, fingerprint, expiry) alongside the PEM. */
export interface IssuedCertificate {
  certificatePem: string;
  /** Serial number, lowercase hex without leading zero octets (as OpenSSL prints it). */
  serialHex: string;
  /** SHA-256 of the certificate DER, lowercase hex. */
  fingerprintSha256: string;
  notBefore: Date;
  notAfter: Date;
}

export interface IssuedSiloCertificate extends IssuedCertificate {
  siloId: string;
  /** SHA-256 of the certified key's SubjectPublicKeyInfo DER, lowercase hex (`publicKeySha256`). */
  publicKeySha256: string;
}

export interface IssuedServerCertificate extends IssuedCertificate {
  /** The server's fresh private key, PKCS#8 PEM; it never existed anywhere else. */
  privateKeyPem: string;
}

export interface IssueSiloCertificateOptions {
  ca: CertificateAuthority;
  /** The silo's CSR PEM; validated with `parseCsr(csr, { expectedSiloId: siloId })` before anything is signed. */
  csr: string;
  /** The silo the enrollment token (or the current mTLS identity, on renewal) belongs to. */
  siloId: string;
  /** Lifetime in whole days; default 30. */
  validityDays?: number;
  /** Issuance time (injected clock, may be in the past for tests); default the current time. */
  now?: Date;
}

export interface IssueServerCertificateOptions {
  ca: CertificateAuthority;
  /** DNS names for subjectAltName dNSName entries, e.g. ['localhost', 'hub.example.org']. */
  hostnames: string[];
  /** IPv4/IPv6 literals for subjectAltName iPAddress entries, e.g. ['127.0.0.1', '::1']. */
  ips: string[];
  /** Lifetime in whole days; default 90. */
  validityDays?: number;
  now?: Date;
  /** Modulus of the generated server key, in bits; default 2048. Ignored when `privateKeyPem` is given. */
  modulusBits?: number;
  /**
   * Certify this private key (RSA >= 2048 bits, e.g. made ahead with generateKeyPairAsync) instead of generating
   * one; the certified public key is derived from it, never taken on trust.
   */
  privateKeyPem?: string;
}

const SERIAL_LEADING_ZEROS = /^(00)+(?=.)/;

function signLeaf(
  authority: LoadedCertificateAuthority,
  subjectCommonName: string,
  publicKeyPem: string,
  now: Date,
  validityDays: number,
  extendedKeyUsage: ForgeExtension,
  altNames: ForgeAltName[],
): IssuedCertificate {
  assertDate(now);
  const caValidity = authority.certificate.validity;
  if (now.getTime() < caValidity.notBefore.getTime() || now.getTime() > caValidity.notAfter.getTime()) {
    throw new PkiException(PkiErrorCode.CaInvalid, `The CA certificate is not valid at ${now.toISOString()}.`);
  }
  const window = validityWindow(now, validityDays);
  // A certificate cannot usefully outlive its issuer (RFC 5280 section 6.1.3 checks every certificate in the path),
  // so the leaf's notAfter is clamped to the CA's.
  const notAfter = window.notAfter.getTime() > caValidity.notAfter.getTime() ? caValidity.notAfter : window.notAfter;

  const cert = forge.pki.createCertificate();
  cert.version = 2; // X.509 v3
  cert.serialNumber = randomSerialHex();
  cert.publicKey = toForgePublicKey(publicKeyPem);
  cert.validity.notBefore = window.notBefore;
  cert.validity.notAfter = notAfter;
  cert.setSubject(commonNameAttributes(subjectCommonName));
  cert.setIssuer(decodedNameAttributes(authority.certificate.subject));
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    // RSA keys: digitalSignature for (EC)DHE handshakes and TLS 1.3, keyEncipherment for TLS 1.2 RSA key transport.
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    extendedKeyUsage,
    { name: 'subjectAltName', altNames },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: authority.keyIdentifier },
  ]);
  cert.sign(authority.signingKey, forge.md.sha256.create());
  const certificatePem = forgeCertificateToPem(cert);
  return {
    certificatePem,
    serialHex: cert.serialNumber.toLowerCase().replace(SERIAL_LEADING_ZEROS, ''),
    fingerprintSha256: fingerprintSha256(certificatePem),
    notBefore: window.notBefore,
    notAfter,
  };
}

/**
 * Issues a silo's TLS client certificate from its CSR (RFC 5280 profile): subject CN = silo id, subjectAltName URI
 * `urn:tessera:silo:<id>`, extKeyUsage id-kp-clientAuth only (section 4.2.1.12), keyUsage digitalSignature +
 * keyEncipherment (critical), basicConstraints cA=FALSE (critical), subject and authority key identifiers, random
 * 128-bit serial, notBefore = now - 5 min (clock-skew allowance), notAfter = now + validityDays (clamped to the CA's
 * notAfter). Only the CSR's public key is taken from the request; requested extensions are validated, never copied.
 */
export function issueSiloCertificate(options: IssueSiloCertificateOptions): IssuedSiloCertificate {
  const authority = loadCertificateAuthority(options.ca);
  const request = parseCsr(options.csr, { expectedSiloId: options.siloId });
  const issued = signLeaf(
    authority,
    request.siloId,
    request.publicKeyPem,
    options.now ?? new Date(),
    options.validityDays ?? DEFAULT_SILO_CERTIFICATE_DAYS,
    { name: 'extKeyUsage', clientAuth: true },
    [{ type: 6, value: siloUri(request.siloId) }],
  );
  return { ...issued, siloId: request.siloId, publicKeySha256: request.publicKeySha256 };
}

// Preferred name syntax (RFC 1123 section 2.1 / RFC 5890 A-labels): dot-separated labels of letters, digits and
// inner hyphens, each 1..63 octets, 253 in total. Lowercase only, so the certificate has one spelling per name.
const HOSTNAME_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

function assertHostname(hostname: string): void {
  const ok =
    typeof hostname === 'string' &&
    hostname.length <= 253 &&
    hostname.split('.').every((label) => HOSTNAME_LABEL.test(label));
  if (!ok) {
    throw new PkiException(
      PkiErrorCode.ArgumentInvalid,
      `${JSON.stringify(hostname)} is not a lowercase DNS host name (RFC 1123); wildcards are not issued.`,
    );
  }
}

/**
 * Issues the hub's TLS server certificate with a freshly generated RSA key: extKeyUsage id-kp-serverAuth only,
 * subjectAltName dNSName and iPAddress entries (RFC 5280 section 4.2.1.6), which is what clients match against
 * (RFC 6125 section 6.4; the CN, first host name or else first IP, is informational). Other fields as for silo
 * certificates.
 */
export function issueServerCertificate(options: IssueServerCertificateOptions): IssuedServerCertificate {
  const authority = loadCertificateAuthority(options.ca);
  const hostnames = options.hostnames ?? [];
  const ips = options.ips ?? [];
  if (hostnames.length + ips.length === 0) {
    throw new PkiException(PkiErrorCode.ArgumentInvalid, 'A server certificate needs at least one host name or IP.');
  }
  hostnames.forEach(assertHostname);
  for (const ip of ips) {
    if (isIP(ip) === 0) throw new PkiException(PkiErrorCode.ArgumentInvalid, `${JSON.stringify(ip)} is not an IP.`);
  }
  const keyPair = options.privateKeyPem
    ? {
        privateKeyPem: options.privateKeyPem,
        publicKeyPem: publicKeyPemOf(loadPrivateKey(options.privateKeyPem, 'server private key')),
      }
    : generateKeyPair({ modulusBits: options.modulusBits ?? DEFAULT_RSA_MODULUS_BITS });
  const altNames: ForgeAltName[] = [
    ...hostnames.map((hostname) => ({ type: 2, value: hostname })),
    ...ips.map((ip) => ({ type: 7, ip })),
  ];
  const issued = signLeaf(
    authority,
    hostnames[0] ?? ips[0]!,
    keyPair.publicKeyPem,
    options.now ?? new Date(),
    options.validityDays ?? DEFAULT_SERVER_CERTIFICATE_DAYS,
    { name: 'extKeyUsage', serverAuth: true },
    altNames,
  );
  return { ...issued, privateKeyPem: keyPair.privateKeyPem };
}
