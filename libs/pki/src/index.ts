// @tessera/pki: public surface.
export { PkiErrorCode, PkiException } from './pki.exception';
export { isSiloId, assertSiloId, siloUri, siloIdFromUri, SILO_URI_PREFIX } from './silo-identity';
export {
  generateKeyPair,
  generateKeyPairAsync,
  publicKeySha256,
  MIN_RSA_MODULUS_BITS,
  DEFAULT_RSA_MODULUS_BITS,
  DEFAULT_CA_RSA_MODULUS_BITS,
  type KeyPairPem,
} from './key-pair';
export {
  encryptPrivateKey,
  encryptPrivateKeyAsync,
  decryptPrivateKey,
  decryptPrivateKeyAsync,
  DEFAULT_KEY_ENCRYPTION_ITERATIONS,
  MIN_KEY_ENCRYPTION_ITERATIONS,
} from './key-encryption';
export {
  createCertificateAuthority,
  type CertificateAuthority,
  type CreateCertificateAuthorityOptions,
} from './certificate-authority';
export { createCsr, parseCsr, type ParsedCsr, type RequestedExtension } from './csr';
export {
  issueSiloCertificate,
  issueServerCertificate,
  DEFAULT_SILO_CERTIFICATE_DAYS,
  DEFAULT_SERVER_CERTIFICATE_DAYS,
  type IssuedCertificate,
  type IssuedSiloCertificate,
  type IssuedServerCertificate,
  type IssueSiloCertificateOptions,
  type IssueServerCertificateOptions,
} from './certificate-issuer';
export {
  parseCertificate,
  certificatePemFromDer,
  fingerprintSha256,
  verifyIssuedBy,
  validityStatus,
  renewalDue,
  type ParsedCertificate,
  type CertificateValidity,
  type ValidityStatus,
} from './certificate-inspector';
export { CLOCK_SKEW_ALLOWANCE_MS, MAX_VALIDITY_DAYS } from './x509.util';
