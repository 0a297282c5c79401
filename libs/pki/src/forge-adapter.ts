// Typed facade over the part of node-forge this library uses.
//
// `@types/node-forge` (1.3.x) types extensions and attributes as `any` and `getExtension` as `{}`, and lags behind
// forge 1.4 (e.g. `asn1.fromDer` options). This file narrows the module to the calls the library makes, with the
// field names forge actually reads and writes, so the rest of the code is checked without `any`. Anything else must
// be added here deliberately. All "bytes" are forge binary strings (one char per byte, code points 0..255); convert
// with `toBinary` / `fromBinary`.
import * as nodeForge from 'node-forge';

/** An ASN.1 node as node-forge represents it: constructed nodes hold children, primitive nodes a binary string. */
export interface ForgeAsn1 {
  tagClass: number;
  type: number;
  constructed: boolean;
  value: string | ForgeAsn1[];
}

export interface ForgeByteBuffer {
  getBytes(): string;
  toHex(): string;
}

export interface ForgeMessageDigest {
  algorithm: string;
  update(bytes: string): ForgeMessageDigest;
  digest(): ForgeByteBuffer;
}

export interface ForgeRsaPublicKey {
  n: { bitLength(): number };
  e: { toString(radix: number): string };
}

/** What forge's `cert.sign` / `csr.sign` call: `sign(md)` returns the signature as a binary string. */
export interface ForgeSigner {
  sign(md: ForgeMessageDigest): string;
}

export type ForgeRsaPrivateKey = ForgeSigner;

/** A subject/issuer attribute; `value` is a string for directory strings. */
export interface ForgeNameAttribute {
  type?: string;
  name?: string;
  shortName?: string;
  value: unknown;
  valueTagClass?: number;
}

/** A GeneralName inside subjectAltName (RFC 5280 section 4.2.1.6): 2 dNSName, 6 URI, 7 iPAddress. */
export interface ForgeAltName {
  type: number;
  value?: string;
  ip?: string;
}

/**
 * A certificate extension. Parsed extensions carry `id`, `critical`, the raw DER `value` and, for known names,
 * decoded fields (e.g. `cA` for basicConstraints). Extensions given to `setExtensions` use the same field names.
 */
export interface ForgeExtension {
  id?: string;
  name?: string;
  critical?: boolean;
  value?: string;
  cA?: boolean;
  pathLenConstraint?: number;
  keyCertSign?: boolean;
  cRLSign?: boolean;
  digitalSignature?: boolean;
  keyEncipherment?: boolean;
  clientAuth?: boolean;
  serverAuth?: boolean;
  altNames?: ForgeAltName[];
  keyIdentifier?: string;
  subjectKeyIdentifier?: string;
}

export interface ForgeName {
  attributes: ForgeNameAttribute[];
  getField(shortName: string): ForgeNameAttribute | null;
}

export interface ForgeCertificate {
  version: number;
  serialNumber: string;
  signatureOid: string | null;
  publicKey: ForgeRsaPublicKey;
  validity: { notBefore: Date; notAfter: Date };
  subject: ForgeName;
  issuer: ForgeName;
  extensions: ForgeExtension[];
  setSubject(attrs: ForgeNameAttribute[]): void;
  setIssuer(attrs: ForgeNameAttribute[]): void;
  setExtensions(exts: ForgeExtension[]): void;
  getExtension(name: string): ForgeExtension | null;
  sign(key: ForgeRsaPrivateKey, md: ForgeMessageDigest): void;
  /** True when `child` is signed by this certificate's key and names this certificate's subject as issuer. */
  verify(child: ForgeCertificate): boolean;
  /** True when this certificate's subject equals `child`'s issuer. */
  issued(child: ForgeCertificate): boolean;
  generateSubjectKeyIdentifier(): ForgeByteBuffer;
}

/** A CSR attribute (PKCS#9, RFC 2985); `extensions` is set for extensionRequest. */
export interface ForgeCsrAttribute {
  type?: string;
  name: string;
  extensions?: ForgeExtension[];
}

export interface ForgeCertificationRequest {
  version: number;
  publicKey: ForgeRsaPublicKey | null;
  subject: ForgeName;
  attributes: ForgeCsrAttribute[];
  setSubject(attrs: ForgeNameAttribute[]): void;
  setAttributes(attrs: ForgeCsrAttribute[]): void;
  sign(key: ForgeRsaPrivateKey, md: ForgeMessageDigest): void;
}

interface ForgeModule {
  asn1: {
    Class: { UNIVERSAL: number; CONTEXT_SPECIFIC: number };
    Type: { BOOLEAN: number; INTEGER: number; OID: number; SEQUENCE: number; OCTETSTRING: number; NULL: number };
    fromDer(bytes: string, options?: { strict?: boolean; parseAllBytes?: boolean }): ForgeAsn1;
    toDer(obj: ForgeAsn1): ForgeByteBuffer;
    derToOid(bytes: string): string;
  };
  md: { sha256: { create(): ForgeMessageDigest } };
  pki: {
    oids: Record<string, string>;
    createCertificate(): ForgeCertificate;
    certificateFromAsn1(obj: ForgeAsn1): ForgeCertificate;
    certificateToAsn1(cert: ForgeCertificate): ForgeAsn1;
    createCertificationRequest(): ForgeCertificationRequest;
    certificationRequestFromAsn1(obj: ForgeAsn1): ForgeCertificationRequest;
    certificationRequestToAsn1(csr: ForgeCertificationRequest): ForgeAsn1;
    publicKeyFromPem(pem: string): ForgeRsaPublicKey;
    publicKeyToPem(key: ForgeRsaPublicKey): string;
    privateKeyFromPem(pem: string): ForgeRsaPrivateKey;
  };
}

/** The node-forge module, typed to the subset above (the published typings are widened away through `unknown`). */
export const forge = nodeForge as unknown as ForgeModule;

/** Forge binary string → Buffer. */
export function fromBinary(bytes: string): Buffer {
  return Buffer.from(bytes, 'latin1');
}

/** Buffer → forge binary string. */
export function toBinary(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('latin1');
}
