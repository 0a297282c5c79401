// Test builders shared by the pki specs. RSA key generation costs ~0.2 s per 2048-bit key on the CI machine, so each
// spec file builds a handful of keys once (beforeAll) and reuses them.
import { createPublicKey, randomUUID, X509Certificate } from 'node:crypto';
import { CertificateAuthority, createCertificateAuthority } from './certificate-authority';
import { encodePem, decodePem } from './der.util';
import { forge, ForgeExtension, ForgeNameAttribute, fromBinary } from './forge-adapter';
import { generateKeyPair, KeyPairPem } from './key-pair';
import { PkiException } from './pki.exception';

export const MS_PER_DAY_FOR_TESTS = 24 * 60 * 60 * 1000;

export function newSiloId(): string {
  return randomUUID();
}

/** A CA on a 2048-bit key (cheaper than the 3072-bit default), issued at `now`, valid for `validityDays`. */
export function buildCa(
  options: { commonName?: string; now?: Date; validityDays?: number; key?: KeyPairPem } = {},
): CertificateAuthority {
  return createCertificateAuthority({
    commonName: options.commonName ?? 'Tessera Test Silo CA',
    validityDays: options.validityDays ?? 3650,
    now: options.now,
    privateKeyPem: (options.key ?? generateKeyPair()).privateKeyPem,
  });
}

/** Node's own parse of a certificate: the independent reference the specs compare against. */
export function nodeX509(pem: string): X509Certificate {
  return new X509Certificate(pem);
}

function cn(value: string): ForgeNameAttribute[] {
  return [{ type: '2.5.4.3', shortName: 'CN', value }];
}

/**
 * A CSR built with node-forge directly, bypassing createCsr's guards, so the specs can produce requests the library
 * would never build (CA flag, disagreeing names, several SANs, extra attributes).
 */
export function buildRawCsr(options: {
  privateKeyPem: string;
  subject?: ForgeNameAttribute[];
  commonName?: string;
  extensions?: ForgeExtension[];
}): string {
  const csr = forge.pki.createCertificationRequest();
  const privateKey = forge.pki.privateKeyFromPem(options.privateKeyPem);
  // Node derives the public half; forge's private key object does not expose it directly.
  const publicKeyPem = createPublicKey(options.privateKeyPem).export({ type: 'spki', format: 'pem' }).toString();
  csr.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  csr.setSubject(options.subject ?? cn(options.commonName ?? 'missing'));
  if (options.extensions !== undefined) {
    csr.setAttributes([{ name: 'extensionRequest', extensions: options.extensions }]);
  }
  csr.sign(privateKey, forge.md.sha256.create());
  return derToCsrPem(fromBinary(forge.asn1.toDer(forge.pki.certificationRequestToAsn1(csr)).getBytes()));
}

/** The SAN extension naming `uris` as URIs. */
export function sanUris(...uris: string[]): ForgeExtension {
  return { name: 'subjectAltName', altNames: uris.map((value) => ({ type: 6, value })) };
}

export function csrDer(csrPem: string): Buffer {
  const der = decodePem(csrPem, 'CERTIFICATE REQUEST');
  if (der === null) throw new Error('fixture CSR is not PEM');
  return der;
}

export function derToCsrPem(der: Uint8Array): string {
  return encodePem(der, 'CERTIFICATE REQUEST');
}

/** A self-signed end-entity certificate for `siloId`, shaped like an issued one, for "unknown issuer" tests. */
export function selfSignedSiloCertificate(key: KeyPairPem, siloId: string, now = new Date()): string {
  const cert = forge.pki.createCertificate();
  cert.version = 2;
  cert.serialNumber = '01';
  cert.publicKey = forge.pki.publicKeyFromPem(key.publicKeyPem);
  cert.validity.notBefore = new Date(now.getTime() - MS_PER_DAY_FOR_TESTS);
  cert.validity.notAfter = new Date(now.getTime() + MS_PER_DAY_FOR_TESTS);
  cert.setSubject(cn(siloId));
  cert.setIssuer(cn(siloId));
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', clientAuth: true },
    sanUris(`urn:tessera:silo:${siloId}`),
  ]);
  cert.sign(forge.pki.privateKeyFromPem(key.privateKeyPem), forge.md.sha256.create());
  return encodePem(fromBinary(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes()), 'CERTIFICATE');
}

/** The PkiException code an action throws, or 'accepted' when it returns; other errors propagate. */
export function refusalCode(action: () => unknown): string {
  try {
    action();
    return 'accepted';
  } catch (error) {
    if (error instanceof PkiException) return error.code;
    throw error;
  }
}
