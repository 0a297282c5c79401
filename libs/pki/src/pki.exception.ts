/** Why the PKI refused an input. String values so they survive logs, JSON and HTTP mappings unchanged. */
export enum PkiErrorCode {
  /** The CSR is not a well-formed PKCS#10 request (bad PEM, bad DER, wrong structure, version or attributes). */
  CsrMalformed = 'CSR_MALFORMED',
  /** The CSR's signature does not verify against the public key it carries (proof of possession failed). */
  CsrSignatureInvalid = 'CSR_SIGNATURE_INVALID',
  /** The CSR asks for a CA certificate (basicConstraints cA, or keyCertSign/cRLSign key usage). */
  CsrRequestsCa = 'CSR_REQUESTS_CA',
  /** The CSR's CN and SAN URI disagree, are missing or malformed, or name another silo than expected. */
  CsrIdentityMismatch = 'CSR_IDENTITY_MISMATCH',
  /** The CSR is signed with an algorithm or carries a key type this CA does not accept. */
  CsrUnsupportedAlgorithm = 'CSR_UNSUPPORTED_ALGORITHM',
  /** The key is shorter than the 2048-bit RSA floor. */
  KeyTooWeak = 'KEY_TOO_WEAK',
  /** A private or public key PEM cannot be read, or is of an unsupported type. */
  KeyMalformed = 'KEY_MALFORMED',
  /** An encrypted private key could not be decrypted with the passphrase given. */
  PassphraseInvalid = 'PASSPHRASE_INVALID',
  /** A certificate PEM cannot be read. */
  CertificateMalformed = 'CERTIFICATE_MALFORMED',
  /** The CA material is not usable for issuing: not a CA certificate, or the key does not match it. */
  CaInvalid = 'CA_INVALID',
  /** A silo id is not a lowercase canonical UUID. */
  SiloIdInvalid = 'SILO_ID_INVALID',
  /** Another argument is out of range (validity, host names, IP addresses, passphrase, dates). */
  ArgumentInvalid = 'ARGUMENT_INVALID',
}

/** The one error type this library throws on purpose; `code` says which rule refused the input. */
export class PkiException extends Error {
  override readonly name = 'PkiException';

  constructor(
    readonly code: PkiErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
