// Signatures with a participant's enrolled identity key over its per-round public keys, so that the hub, which relays
// every key, cannot substitute its own (the man-in-the-middle that would let it decrypt shares or cancel masks).
// Tessera's PKI issues RSA silo keys (libs/pki/src/key-pair.ts: node-forge signs certificates with RSA only); ECDSA
// P-256 and Ed25519 keys are accepted too, so a later change of key type in the PKI needs no change here.

import { constants, createPublicKey, KeyObject, sign, verify, X509Certificate } from 'node:crypto';

import { SecAggErrorCode, SecAggException } from './secagg.exception';

/** Smallest RSA modulus accepted (the PKI's floor, NIST SP 800-57 Part 1 Rev. 5: 112-bit security). */
export const MIN_IDENTITY_RSA_BITS = 2048;

/** A participant's identity public key: a KeyObject, an SPKI public-key PEM, or its certificate's PEM. */
export type IdentityPublicKey = KeyObject | string;

/** Identity public keys by participant id (from the silos' certificates, which the caller has already validated). */
export type IdentityKeyDirectory = ReadonlyMap<string, IdentityPublicKey>;

type SignatureScheme = 'rsa-pss-sha256' | 'ecdsa-p256-sha256' | 'ed25519';

/**
 * Which scheme a key signs with, or UNSUPPORTED_IDENTITY_KEY: RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt
 * (RFC 8017 section 8.1) for RSA ≥ 2048 bits; ECDSA over P-256 with SHA-256 (FIPS 186-5); Ed25519 (RFC 8032).
 */
function schemeOf(key: KeyObject): SignatureScheme {
  switch (key.asymmetricKeyType) {
    case 'rsa':
    case 'rsa-pss': {
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
      if (bits < MIN_IDENTITY_RSA_BITS) {
        throw new SecAggException(
          SecAggErrorCode.UnsupportedIdentityKey,
          `The identity key is ${bits}-bit RSA; at least ${MIN_IDENTITY_RSA_BITS} bits are required.`,
        );
      }
      return 'rsa-pss-sha256';
    }
    case 'ec':
      if (key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ecdsa-p256-sha256';
      throw new SecAggException(
        SecAggErrorCode.UnsupportedIdentityKey,
        `The identity key is on curve ${key.asymmetricKeyDetails?.namedCurve ?? 'unknown'}; only P-256 is accepted.`,
      );
    case 'ed25519':
      return 'ed25519';
    default:
      throw new SecAggException(
        SecAggErrorCode.UnsupportedIdentityKey,
        `Identity keys of type ${key.asymmetricKeyType ?? 'unknown'} are not supported (RSA, ECDSA P-256, Ed25519).`,
      );
  }
}

/** Signs `message` with an identity private key (scheme chosen by key type, see schemeOf). */
export function signWithIdentity(privateKey: KeyObject, message: Uint8Array): Uint8Array {
  if (privateKey.type !== 'private') {
    throw new SecAggException(SecAggErrorCode.UnsupportedIdentityKey, 'Signing needs the identity private key.');
  }
  return new Uint8Array(sign(digestOf(schemeOf(privateKey)), message, signingOptions(privateKey)));
}

/**
 * True when `signature` is a valid signature of `message` under the identity public key. Throws
 * UNSUPPORTED_IDENTITY_KEY for a key that cannot be read or is of an unaccepted type; a wrong or malformed signature is
 * simply false.
 */
export function verifyWithIdentity(publicKey: IdentityPublicKey, message: Uint8Array, signature: Uint8Array): boolean {
  const key = toPublicKeyObject(publicKey);
  try {
    return verify(digestOf(schemeOf(key)), message, signingOptions(key), signature);
  } catch (error) {
    if (error instanceof SecAggException) throw error;
    return false; // OpenSSL rejects some malformed signatures (bad DER, wrong length) by throwing.
  }
}

function digestOf(scheme: SignatureScheme): string | null {
  return scheme === 'ed25519' ? null : 'sha256';
}

/** The key with the scheme's options (the same shape serves signing and verifying). */
function signingOptions(key: KeyObject): {
  key: KeyObject;
  padding?: number;
  saltLength?: number;
  dsaEncoding?: 'der';
} {
  switch (schemeOf(key)) {
    case 'rsa-pss-sha256':
      return { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
    case 'ecdsa-p256-sha256':
      return { key, dsaEncoding: 'der' };
    case 'ed25519':
      return { key };
  }
}

/** A public KeyObject from a KeyObject (private keys give their public half), an SPKI PEM or a certificate PEM. */
export function toPublicKeyObject(key: IdentityPublicKey): KeyObject {
  try {
    if (typeof key !== 'string') return key.type === 'private' ? createPublicKey(key) : key;
    if (key.includes('-----BEGIN CERTIFICATE-----')) return new X509Certificate(key).publicKey;
    return createPublicKey({ key, format: 'pem' });
  } catch (error) {
    throw new SecAggException(SecAggErrorCode.UnsupportedIdentityKey, 'Cannot read the identity public key.', {
      cause: error,
    });
  }
}
