import { createPrivateKey, createPublicKey, generateKeyPairSync, KeyObject, sign, verify } from 'node:crypto';
import { canonicalJson, sha256Hex } from '@tessera/canonical';

/** An Ed25519 key pair as PEM: SPKI public key, PKCS #8 private key. */
export interface SigningKeyPair {
  publicKeyPem: string;
  privateKeyPem: string;
}

/** A private key as PEM (PKCS #8) or a node:crypto KeyObject. */
export type SigningKeyInput = string | KeyObject;
/** A public key as PEM (SPKI) or a KeyObject; a private key is accepted too and its public half used. */
export type VerifyKeyInput = string | KeyObject;

/** Thrown for a key that is not a usable Ed25519 key. */
export class SigningKeyError extends Error {
  override readonly name = 'SigningKeyError';
}

/** Why a signed object (checkpoint, receipt) did not verify. */
export enum SignatureProblemCode {
  /** Missing or extra fields, wrong types. */
  Malformed = 'MALFORMED',
  /** keyId does not name the key the verifier was given. */
  KeyMismatch = 'KEY_MISMATCH',
  /** The Ed25519 signature does not verify over the canonical bytes. */
  BadSignature = 'BAD_SIGNATURE',
}

export type SignatureVerification =
  { ok: true; keyId: string } | { ok: false; code: SignatureProblemCode; message: string };

/** Generates an Ed25519 (RFC 8032) key pair for the hub's audit signatures. */
export function generateSigningKey(): SigningKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519', {
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { publicKeyPem: publicKey, privateKeyPem: privateKey };
}

function ensureEd25519(key: KeyObject, what: string): KeyObject {
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new SigningKeyError(`${what} is a ${key.asymmetricKeyType ?? key.type} key, not Ed25519`);
  }
  return key;
}

/** Parses a private signing key; throws SigningKeyError unless it is an Ed25519 private key. */
export function toPrivateKey(key: SigningKeyInput): KeyObject {
  if (key instanceof KeyObject) {
    if (key.type !== 'private') throw new SigningKeyError('signing needs a private key');
    return ensureEd25519(key, 'signing key');
  }
  try {
    return ensureEd25519(createPrivateKey(key), 'signing key');
  } catch (error) {
    if (error instanceof SigningKeyError) throw error;
    throw new SigningKeyError(`cannot read the signing key: ${(error as Error).message}`);
  }
}

/** Parses a public key (or the public half of a private one); throws SigningKeyError unless it is Ed25519. */
export function toPublicKey(key: VerifyKeyInput): KeyObject {
  if (key instanceof KeyObject) {
    return ensureEd25519(key.type === 'private' ? createPublicKey(key) : key, 'public key');
  }
  try {
    return ensureEd25519(createPublicKey(key), 'public key');
  } catch (error) {
    if (error instanceof SigningKeyError) throw error;
    throw new SigningKeyError(`cannot read the public key: ${(error as Error).message}`);
  }
}

/**
 * The key id: SHA-256 (hex) over the DER SubjectPublicKeyInfo (RFC 5280 §4.1, RFC 8410 §4) of the Ed25519 public
 * key, the same bytes as `openssl pkey -pubin -outform DER`. Accepts a public or private key.
 */
export function publicKeyFingerprint(key: VerifyKeyInput): string {
  const der = toPublicKey(key).export({ type: 'spki', format: 'der' });
  return sha256Hex(der);
}

/** Public key as SPKI PEM, whatever form it was given in. */
export function publicKeyPem(key: VerifyKeyInput): string {
  return toPublicKey(key).export({ type: 'spki', format: 'pem' }).toString();
}

/** Ed25519 signature (RFC 8032 §5.1.6, pure mode) over the UTF-8 bytes of canonicalJson(unsigned), in base64. */
export function signCanonical(unsigned: unknown, key: KeyObject): string {
  return sign(null, Buffer.from(canonicalJson(unsigned), 'utf8'), key).toString('base64');
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Verifies signCanonical's output; false for any malformed signature rather than throwing. */
export function verifyCanonical(unsigned: unknown, signature: string, key: KeyObject): boolean {
  if (!BASE64.test(signature) || signature.length % 4 !== 0) return false;
  const bytes = Buffer.from(signature, 'base64');
  // Ed25519 signatures are exactly 64 bytes (RFC 8032 §5.1.6); refuse anything else before calling into OpenSSL.
  if (bytes.length !== 64) return false;
  return verify(null, Buffer.from(canonicalJson(unsigned), 'utf8'), key, bytes);
}
