// X25519 (RFC 7748) and HKDF-SHA-256 (RFC 5869) through node:crypto, on raw 32-byte keys so that keys can live in
// plain serialisable state and be split by Shamir sharing.

import { createPrivateKey, createPublicKey, diffieHellman, hkdfSync, KeyObject } from 'node:crypto';

import { SecAggRandom, randomBytesFrom } from './random-source';
import { SecAggErrorCode, SecAggException } from './secagg.exception';

/** Bytes of an X25519 private or public key, and of the shared secret (RFC 7748 section 5). */
export const X25519_KEY_BYTES = 32;

// Raw keys enter node:crypto without OpenSSL's slow decoders where the Node version allows it. Public keys are JSON
// Web Keys (RFC 8037 section 2: kty "OKP", crv "X25519", base64url x). A private key as JWK needs its public half x
// too: Node 20 (OpenSSL 3.0) reads d alone and recomputes the public half, so a placeholder x will do, and there a
// PKCS#8 import costs about ten times the key agreement itself (1.6 ms against 0.13 ms per key on the benchmark
// machine; a round makes dozens); Node 24 checks x against d and refuses a placeholder, but imports PKCS#8 as fast as
// a JWK (0.11 ms). Which of the two this Node does is probed once, on a fixed key; RFC 7748 known-answer tests cover
// the imports.
const JWK_PLACEHOLDER_X = 'A'.repeat(43); // 32 zero bytes in base64url: Node 20 never reads x for a private key
/** PKCS#8 PrivateKeyInfo of an X25519 key (RFC 8410 section 7) up to the 32 raw bytes that end it. */
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

function privateKeyFromJwk(privateKey: Uint8Array): KeyObject {
  return createPrivateKey({
    key: { kty: 'OKP', crv: 'X25519', d: base64Url(privateKey), x: JWK_PLACEHOLDER_X },
    format: 'jwk',
  });
}

function privateKeyFromPkcs8(privateKey: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, privateKey]), format: 'der', type: 'pkcs8' });
}

/** Whether this Node builds a private key from d with a placeholder x (Node 20) or refuses it (Node 24). */
function placeholderXAccepted(): boolean {
  try {
    privateKeyFromJwk(new Uint8Array(X25519_KEY_BYTES).fill(7));
    return true;
  } catch (err) {
    // x is checked against d here; PKCS#8 is the fast import instead.
    if ((err as { code?: unknown }).code === 'ERR_CRYPTO_INVALID_JWK') return false;
    throw err;
  }
}

let importPrivateKey: ((privateKey: Uint8Array) => KeyObject) | undefined;

function base64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

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
  importPrivateKey ??= placeholderXAccepted() ? privateKeyFromJwk : privateKeyFromPkcs8;
  return importPrivateKey(privateKey);
}

/** A private key as raw bytes, or already made into a key object (x25519PrivateKeyObject). */
export type X25519PrivateKey = Uint8Array | KeyObject;

function privateKeyObject(privateKey: X25519PrivateKey): KeyObject {
  return privateKey instanceof KeyObject ? privateKey : x25519PrivateKeyObject(privateKey);
}

function publicKeyObject(publicKey: Uint8Array): KeyObject {
  assertKeyLength(publicKey, 'An X25519 public key');
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: base64Url(publicKey) }, format: 'jwk' });
}

/** The public key X25519(sk, 9) of a raw private key (RFC 7748 section 6.1). */
export function x25519PublicKey(privateKey: Uint8Array): Uint8Array {
  const { x } = createPublicKey(privateKeyObject(privateKey)).export({ format: 'jwk' });
  const publicKey = new Uint8Array(Buffer.from(x ?? '', 'base64url'));
  assertKeyLength(publicKey, 'A derived X25519 public key');
  return publicKey;
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
