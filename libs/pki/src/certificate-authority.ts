import { createPublicKey, KeyObject } from 'node:crypto';
import { forge, ForgeCertificate, ForgeRsaPrivateKey, toBinary } from './forge-adapter';
import {
  DEFAULT_CA_RSA_MODULUS_BITS,
  generateKeyPair,
  loadPrivateKey,
  publicKeyPemOf,
  toForgePrivateKey,
  toForgePublicKey,
} from './key-pair';
import { PkiErrorCode, PkiException } from './pki.exception';
import {
  assertCommonName,
  commonNameAttributes,
  forgeCertificateToPem,
  randomSerialHex,
  toForgeCertificate,
  validityWindow,
} from './x509.util';

/** A certificate authority as stored: its self-signed certificate and its (decrypted) private key, both PEM. */
export interface CertificateAuthority {
  certificatePem: string;
  privateKeyPem: string;
}

export interface CreateCertificateAuthorityOptions {
  /** Subject and issuer CN, 1..64 characters. */
  commonName: string;
  /** Lifetime in whole days from `now`. */
  validityDays: number;
  /** Issuance time (injected clock); defaults to the current time. */
  now?: Date;
  /** Use this existing key instead of generating one (PKCS#8 or PKCS#1 PEM, RSA >= 2048 bits). */
  privateKeyPem?: string;
  /** Modulus of a generated key, in bits; default 3072. Ignored when `privateKeyPem` is given. */
  modulusBits?: number;
}

/**
 * Creates a self-signed root CA for silo and hub certificates (RFC 5280 section 4.2.1.9 basicConstraints cA=TRUE,
 * critical, pathLenConstraint 0 so it can only sign end-entity certificates; section 4.2.1.3 keyUsage keyCertSign +
 * cRLSign, critical; section 4.2.1.2 subjectKeyIdentifier, method 1 = SHA-1 of the subjectPublicKey). Signed with
 * sha256WithRSAEncryption (RFC 4055). notBefore is backdated by the clock-skew allowance.
 */
export function createCertificateAuthority(options: CreateCertificateAuthorityOptions): CertificateAuthority {
  assertCommonName(options.commonName);
  const { notBefore, notAfter } = validityWindow(options.now ?? new Date(), options.validityDays);
  const privateKey = loadPrivateKey(
    options.privateKeyPem ??
      generateKeyPair({ modulusBits: options.modulusBits ?? DEFAULT_CA_RSA_MODULUS_BITS }).privateKeyPem,
    'CA private key',
  );

  const cert = forge.pki.createCertificate();
  cert.version = 2; // X.509 v3 (the field is zero-based)
  cert.serialNumber = randomSerialHex();
  cert.publicKey = toForgePublicKey(publicKeyPemOf(privateKey));
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  cert.setSubject(commonNameAttributes(options.commonName));
  cert.setIssuer(commonNameAttributes(options.commonName));
  const subjectKeyIdentifier = cert.generateSubjectKeyIdentifier().getBytes();
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
    // Optional for a self-signed certificate (RFC 5280 section 4.2.1.1) but helps chain builders match keys.
    { name: 'authorityKeyIdentifier', keyIdentifier: subjectKeyIdentifier },
  ]);
  cert.sign(toForgePrivateKey(privateKey), forge.md.sha256.create());

  return {
    certificatePem: forgeCertificateToPem(cert),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/** A CA checked and ready to sign: forge certificate, forge key and the binary key identifier for AKI. */
export interface LoadedCertificateAuthority {
  certificate: ForgeCertificate;
  signingKey: ForgeRsaPrivateKey;
  keyIdentifier: string;
}

function spkiDer(key: KeyObject): Buffer {
  return (key.type === 'public' ? key : createPublicKey(key)).export({ type: 'spki', format: 'der' });
}

/**
 * Checks that `ca` can issue: its certificate is a CA (basicConstraints cA, keyUsage keyCertSign) and the private key
 * is the one the certificate certifies. Throws CA_INVALID otherwise.
 */
export function loadCertificateAuthority(ca: CertificateAuthority): LoadedCertificateAuthority {
  let certificate: ForgeCertificate;
  let privateKey: KeyObject;
  try {
    certificate = toForgeCertificate(ca.certificatePem);
    privateKey = loadPrivateKey(ca.privateKeyPem, 'CA private key');
  } catch (error) {
    throw new PkiException(PkiErrorCode.CaInvalid, `CA material is unreadable: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const basicConstraints = certificate.getExtension('basicConstraints');
  const keyUsage = certificate.getExtension('keyUsage');
  if (basicConstraints?.cA !== true || keyUsage?.keyCertSign !== true) {
    throw new PkiException(PkiErrorCode.CaInvalid, 'The CA certificate is not a CA (basicConstraints/keyUsage).');
  }
  const certifiedKey = createPublicKey(forge.pki.publicKeyToPem(certificate.publicKey));
  if (!spkiDer(certifiedKey).equals(spkiDer(privateKey))) {
    throw new PkiException(PkiErrorCode.CaInvalid, 'The CA private key does not match the CA certificate.');
  }
  const ski = certificate.getExtension('subjectKeyIdentifier')?.subjectKeyIdentifier;
  const keyIdentifier =
    ski !== undefined ? toBinary(Buffer.from(ski, 'hex')) : certificate.generateSubjectKeyIdentifier().getBytes();
  return { certificate, signingKey: toForgePrivateKey(privateKey), keyIdentifier };
}
