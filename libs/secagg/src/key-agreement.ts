// X25519 (RFC 7748) and HKDF-SHA-256 (RFC 5869) through node:crypto, on raw 32-byte keys so that keys can live in
// plain serialisable state and be split by Shamir sharing.

import { createPrivateKey, createPublicKey, diffieHellman, hkdfSync, KeyObject } from 'node:crypto';

import { SecAggRandom, randomBytesFrom } from './random-source';
import { SecAggErrorCode, SecAggException } from './secagg.exception';

/** Bytes of an X25519 private or public key, and of the shared secret (RFC 7748 section 5). */
export const X25519_KEY_BYTES = 32;

// DER prefixes of PKCS#8 PrivateKeyInfo and SubjectPublicKeyInfo for id-X25519 (OID 1.3.101.110, RFC 8410 sections
// 3 and 7), followed by the 32 raw key bytes. Node imports raw X25519 keys only through these containers (or JWK).
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

/** An ephemeral X25519 key pair as raw bytes. */
export interface X25519KeyPair {
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}

function assertKeyLength(bytes: Uint8Array, what: string): void {
  if (bytes.length !== X25519_KEY_BYTES) {
    throw new SecAggException(
      SecAggErrorCode.MalformedMessage,
      `${what} must be ${X25519_KEY_BYTES} bytes, got ${bytes.length}.`,
    );
  }
}

/**
 * A raw X25519 private key as a key object, made once where one key meets several peers (its use ends with the
 * caller's scope: nothing keeps it, so the key is forgotten with the state that held it).
 */
export function x25519PrivateKeyObject(privateKey: Uint8Array): KeyObject {
  assertKeyLength(privateKey, 'An X25519 private key');
  return createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, privateKey]), format: 'der', type: 'pkcs8' });
}

/** A private key as raw bytes, or already made into a key object (x25519PrivateKeyObject). */
export type X25519PrivateKey = Uint8Array | KeyObject;

function privateKeyObject(privateKey: X25519PrivateKey): KeyObject {
  return privateKey instanceof KeyObject ? privateKey : x25519PrivateKeyObject(privateKey);
}

function publicKeyObject(publicKey: Uint8Array): KeyObject {
  assertKeyLength(publicKey, 'An X25519 public key');
  return createPublicKey({ key: Buffer.concat([SPKI_X25519_PREFIX, publicKey]), format: 'der', type: 'spki' });
}

/** The public key X25519(sk, 9) of a raw private key (RFC 7748 section 6.1). */
export function x25519PublicKey(privateKey: Uint8Array): Uint8Array {
  const der = createPublicKey(privateKeyObject(privateKey)).export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(der.length - X25519_KEY_BYTES));
}

/** A fresh key pair from 32 random bytes (X25519 clamps the scalar itself, RFC 7748 section 5). */
export function generateX25519KeyPair(random: SecAggRandom): X25519KeyPair {
  const privateKey = randomBytesFrom(random, X25519_KEY_BYTES);
  return { privateKey, publicKey: x25519PublicKey(privateKey) };
}

/**
 * The X25519 shared secret of a private and a peer's public key (RFC 7748 section 6.1). OpenSSL refuses a peer key
 * of small order (all-zero output); that surfaces as MALFORMED_MESSAGE, never as a weak secret.
 */
export function x25519SharedSecret(privateKey: X25519PrivateKey, peerPublicKey: Uint8Array): Uint8Array {
  try {
    return new Uint8Array(
      diffieHellman({ privateKey: privateKeyObject(privateKey), publicKey: publicKeyObject(peerPublicKey) }),
    );
  } catch (error) {
    if (error instanceof SecAggException) throw error;
    throw new SecAggException(SecAggErrorCode.MalformedMessage, 'X25519 key agreement failed (invalid peer key).', {
      cause: error,
    });
  }
}

/** HKDF-SHA-256 (RFC 5869 sections 2.2–2.3): extract with `salt`, expand with `info` to `length` bytes. */
export function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', ikm, salt, info, length));
}
