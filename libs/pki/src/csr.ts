import { createPublicKey, KeyObject, verify } from 'node:crypto';
import { decodePem, DerElement, encodePem, readDerChildren, readDerElement } from './der.util';
import { forge, ForgeCertificationRequest, ForgeExtension, fromBinary, toBinary } from './forge-adapter';
import {
  loadPrivateKey,
  MIN_RSA_MODULUS_BITS,
  publicKeyPemOf,
  publicKeySha256,
  toForgePrivateKey,
  toForgePublicKey,
} from './key-pair';
import { PkiErrorCode, PkiException } from './pki.exception';
import { assertSiloId, siloIdFromUri, siloUri } from './silo-identity';
import { commonNameAttributes, nameAttributeText } from './x509.util';

/** An extension a CSR asks for (PKCS#9 extensionRequest, RFC 2985 section 5.4.2). The CA never copies these. */
export interface RequestedExtension {
  oid: string;
  /** forge's name for the OID when it knows it, e.g. 'subjectAltName'. */
  name: string | null;
  critical: boolean;
}

/** A CSR that passed every check in `parseCsr`. */
export interface ParsedCsr {
  siloId: string;
  /** The requester's public key, SPKI PEM. */
  publicKeyPem: string;
  /** SHA-256 of the key's SubjectPublicKeyInfo DER, lowercase hex (`publicKeySha256`). */
  publicKeySha256: string;
  modulusBits: number;
  requestedExtensions: RequestedExtension[];
  /** Always true: a CSR whose signature fails is refused, never returned. Kept so callers can record it. */
  signatureValid: true;
}

// AlgorithmIdentifier DER for the accepted CSR signature algorithms, parameters NULL as RFC 4055 section 5 requires.
// Comparing whole encodings (rather than decoding them) leaves no room for unsigned bytes that vary.
const SIGNATURE_ALGORITHMS: ReadonlyArray<{ der: Buffer; hash: string }> = [
  { der: Buffer.from('300d06092a864886f70d01010b0500', 'hex'), hash: 'sha256' }, // sha256WithRSAEncryption
  { der: Buffer.from('300d06092a864886f70d01010c0500', 'hex'), hash: 'sha384' }, // sha384WithRSAEncryption
  { der: Buffer.from('300d06092a864886f70d01010d0500', 'hex'), hash: 'sha512' }, // sha512WithRSAEncryption
];

const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
const OID_COMMON_NAME = '2.5.4.3';
const OID_BASIC_CONSTRAINTS = '2.5.29.19';
const OID_KEY_USAGE = '2.5.29.15';
const OID_SUBJECT_ALT_NAME = '2.5.29.17';
/** GeneralName tag of uniformResourceIdentifier (RFC 5280 section 4.2.1.6). */
const GENERAL_NAME_URI = 6;

/**
 * Builds a PKCS#10 certification request (RFC 2986) for a silo: subject CN = silo id, and an extensionRequest
 * (RFC 2985 section 5.4.2) for subjectAltName URI `urn:tessera:silo:<id>`. Signed with sha256WithRSAEncryption by the
 * silo's own key, which proves possession of it (RFC 2986 section 3).
 */
export function createCsr(options: { privateKeyPem: string; siloId: string }): string {
  assertSiloId(options.siloId);
  const privateKey = loadPrivateKey(options.privateKeyPem, 'silo private key');
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = toForgePublicKey(publicKeyPemOf(privateKey));
  csr.setSubject(commonNameAttributes(options.siloId));
  csr.setAttributes([
    {
      name: 'extensionRequest',
      extensions: [{ name: 'subjectAltName', altNames: [{ type: GENERAL_NAME_URI, value: siloUri(options.siloId) }] }],
    },
  ]);
  csr.sign(toForgePrivateKey(privateKey), forge.md.sha256.create());
  return encodePem(
    fromBinary(forge.asn1.toDer(forge.pki.certificationRequestToAsn1(csr)).getBytes()),
    'CERTIFICATE REQUEST',
  );
}

function malformed(message: string, cause?: unknown): PkiException {
  return new PkiException(PkiErrorCode.CsrMalformed, message, cause === undefined ? undefined : { cause });
}

function mismatch(message: string): PkiException {
  return new PkiException(PkiErrorCode.CsrIdentityMismatch, message);
}

interface CsrFrame {
  certificationRequestInfo: Buffer;
  subjectPublicKeyInfo: Buffer;
  hash: string;
  signature: Buffer;
}

/**
 * Splits CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm, signature BIT STRING }
 * (RFC 2986 section 4) into the exact signed bytes, the key, the hash and the signature, checking DER framing.
 */
function frameCsr(der: Buffer): CsrFrame {
  let outer: DerElement;
  let parts: DerElement[];
  let info: DerElement[];
  try {
    outer = readDerElement(der, 0);
    if (outer.tag !== 0x30 || outer.end !== der.length) throw malformed('CSR is not exactly one DER SEQUENCE.');
    parts = readDerChildren(der, outer);
    if (parts.length !== 3 || parts[0]!.tag !== 0x30 || parts[1]!.tag !== 0x30 || parts[2]!.tag !== 0x03) {
      throw malformed('CSR is not SEQUENCE { certificationRequestInfo, signatureAlgorithm, signature }.');
    }
    info = readDerChildren(der, parts[0]!);
  } catch (error) {
    if (error instanceof PkiException) throw error;
    throw malformed('CSR DER framing is invalid.', error);
  }
  // CertificationRequestInfo ::= SEQUENCE { version INTEGER (0), subject Name, subjectPKInfo, attributes [0] }
  const [version, subject, spki, attributes] = info;
  if (
    info.length !== 4 ||
    version!.tag !== 0x02 ||
    version!.end - version!.contentStart !== 1 ||
    der[version!.contentStart] !== 0 ||
    subject!.tag !== 0x30 ||
    spki!.tag !== 0x30 ||
    attributes!.tag !== 0xa0
  ) {
    throw malformed('CertificationRequestInfo is not a version 1 PKCS#10 structure.');
  }
  const algorithm = der.subarray(parts[1]!.start, parts[1]!.end);
  const known = SIGNATURE_ALGORITHMS.find((candidate) => candidate.der.equals(algorithm));
  if (known === undefined) {
    throw new PkiException(
      PkiErrorCode.CsrUnsupportedAlgorithm,
      'CSR signature algorithm is not sha256/384/512WithRSAEncryption with NULL parameters.',
    );
  }
  // BIT STRING content: first octet = number of unused bits, which must be 0 for an RSA signature.
  if (parts[2]!.end - parts[2]!.contentStart < 2 || der[parts[2]!.contentStart] !== 0) {
    throw malformed('CSR signature BIT STRING is malformed.');
  }
  return {
    certificationRequestInfo: der.subarray(parts[0]!.start, parts[0]!.end),
    subjectPublicKeyInfo: der.subarray(spki!.start, spki!.end),
    hash: known.hash,
    signature: der.subarray(parts[2]!.contentStart + 1, parts[2]!.end),
  };
}

function readRequestedKey(spki: Buffer): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch (error) {
    throw malformed('CSR subjectPublicKeyInfo cannot be read.', error);
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw new PkiException(
      PkiErrorCode.CsrUnsupportedAlgorithm,
      `CSR carries a ${key.asymmetricKeyType ?? 'unknown'} key; only RSA is accepted.`,
    );
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_RSA_MODULUS_BITS) {
    throw new PkiException(
      PkiErrorCode.KeyTooWeak,
      `CSR key has a ${bits}-bit RSA modulus; at least ${MIN_RSA_MODULUS_BITS} bits are required.`,
    );
  }
  return key;
}

function requestedExtensionsOf(csr: ForgeCertificationRequest): ForgeExtension[] {
  const seenTypes = new Set<string>();
  let extensions: ForgeExtension[] = [];
  for (const attribute of csr.attributes) {
    if (attribute.type !== OID_EXTENSION_REQUEST) {
      throw malformed(`CSR carries an unsupported attribute ${attribute.type ?? attribute.name}.`);
    }
    if (seenTypes.has(attribute.type)) throw malformed('CSR carries more than one extensionRequest.');
    seenTypes.add(attribute.type);
    extensions = attribute.extensions ?? [];
  }
  const seenIds = new Set<string>();
  for (const extension of extensions) {
    if (extension.id === undefined || seenIds.has(extension.id)) {
      throw malformed(`CSR requests extension ${extension.id ?? '?'} twice or without an OID.`);
    }
    seenIds.add(extension.id);
  }
  return extensions;
}

/**
 * Parses and validates a silo's PKCS#10 CSR (RFC 2986). Refuses, with a PkiException:
 * - CSR_MALFORMED: not one strict PEM/DER CertificationRequest v1, unknown attributes, duplicate extensions;
 * - CSR_UNSUPPORTED_ALGORITHM / KEY_TOO_WEAK: not RSA with SHA-2, or a modulus under 2048 bits;
 * - CSR_SIGNATURE_INVALID: the signature does not verify over the exact DER of certificationRequestInfo with the
 *   key it carries (checked with OpenSSL through Node's crypto, independently of node-forge);
 * - CSR_REQUESTS_CA: basicConstraints cA=TRUE or keyUsage keyCertSign/cRLSign requested (RFC 5280 section 4.2.1.9);
 * - CSR_IDENTITY_MISMATCH: subject is not exactly one CN holding a silo id, the SAN is not exactly one URI
 *   `urn:tessera:silo:<same id>`, or the id differs from `expectedSiloId`.
 */
export function parseCsr(csrPem: string, options: { expectedSiloId?: string } = {}): ParsedCsr {
  if (options.expectedSiloId !== undefined) assertSiloId(options.expectedSiloId);
  const der = typeof csrPem === 'string' ? decodePem(csrPem, 'CERTIFICATE REQUEST') : null;
  if (der === null) throw malformed('Input is not a single PEM "CERTIFICATE REQUEST" block.');

  const frame = frameCsr(der);
  const publicKey = readRequestedKey(frame.subjectPublicKeyInfo);
  if (!verify(frame.hash, frame.certificationRequestInfo, publicKey, frame.signature)) {
    throw new PkiException(
      PkiErrorCode.CsrSignatureInvalid,
      'CSR signature does not verify with the CSR public key (tampered request or no proof of key possession).',
    );
  }

  let csr: ForgeCertificationRequest;
  try {
    csr = forge.pki.certificationRequestFromAsn1(
      forge.asn1.fromDer(toBinary(der), { strict: true, parseAllBytes: true }),
    );
  } catch (error) {
    throw malformed('CSR content cannot be parsed.', error);
  }
  const extensions = requestedExtensionsOf(csr);

  const basicConstraints = extensions.find((extension) => extension.id === OID_BASIC_CONSTRAINTS);
  const keyUsage = extensions.find((extension) => extension.id === OID_KEY_USAGE);
  if (basicConstraints?.cA === true || keyUsage?.keyCertSign === true || keyUsage?.cRLSign === true) {
    throw new PkiException(
      PkiErrorCode.CsrRequestsCa,
      'CSR requests CA powers (basicConstraints cA or keyCertSign/cRLSign); silos only get end-entity certificates.',
    );
  }

  const subject = csr.subject.attributes;
  if (subject.length !== 1 || subject[0]!.type !== OID_COMMON_NAME) {
    throw mismatch('CSR subject must be exactly one CN holding the silo id.');
  }
  const commonName = nameAttributeText(subject[0]!);
  const altNames = extensions.find((extension) => extension.id === OID_SUBJECT_ALT_NAME)?.altNames ?? [];
  if (altNames.length !== 1 || altNames[0]!.type !== GENERAL_NAME_URI || typeof altNames[0]!.value !== 'string') {
    throw mismatch('CSR must request exactly one subjectAltName, a URI urn:tessera:silo:<silo id>.');
  }
  const sanSiloId = siloIdFromUri(altNames[0]!.value);
  if (sanSiloId === null) {
    throw mismatch(`CSR SAN URI ${JSON.stringify(altNames[0]!.value)} is not urn:tessera:silo:<lowercase uuid>.`);
  }
  if (commonName !== sanSiloId) {
    throw mismatch(`CSR CN ${JSON.stringify(commonName)} disagrees with its SAN silo id ${sanSiloId}.`);
  }
  if (options.expectedSiloId !== undefined && sanSiloId !== options.expectedSiloId) {
    throw mismatch(`CSR names silo ${sanSiloId} but silo ${options.expectedSiloId} is enrolling.`);
  }

  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return {
    siloId: sanSiloId,
    publicKeyPem,
    publicKeySha256: publicKeySha256(publicKeyPem),
    modulusBits: publicKey.asymmetricKeyDetails?.modulusLength ?? 0,
    requestedExtensions: extensions.map((extension) => ({
      oid: extension.id ?? '',
      name: extension.name ?? null,
      critical: extension.critical === true,
    })),
    signatureValid: true,
  };
}
