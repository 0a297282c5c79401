import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';

/** What a SHA-256 implementation takes: a string (hashed as its UTF-8 bytes) or bytes. */
export type Sha256Input = string | Uint8Array;

/** The hash node:crypto offers, reached without an import so a browser bundle never asks for node:crypto. */
type NodeCrypto = typeof import('node:crypto');

/**
 * node:crypto when the code runs in Node (≥ 20.16 has process.getBuiltinModule), else undefined. Node's native
 * SHA-256 is several times faster than any JavaScript one on the hub's and the agent's large inputs (model
 * updates of tens of MB); the browser has no synchronous hash at all (WebCrypto's digest is asynchronous).
 */
function nodeCrypto(): NodeCrypto | undefined {
  if (typeof process === 'undefined' || typeof process.getBuiltinModule !== 'function') return undefined;
  return process.getBuiltinModule('node:crypto');
}

const native = nodeCrypto();

/** SHA-256 by node:crypto; only where `native` exists. */
export function nativeSha256Hex(crypto: NodeCrypto, data: Sha256Input): string {
  const hash = crypto.createHash('sha256');
  return (typeof data === 'string' ? hash.update(data, 'utf8') : hash.update(data)).digest('hex');
}

/** SHA-256 in JavaScript (@noble/hashes, audited): the same digest in every runtime, browsers included. */
export function portableSha256Hex(data: Sha256Input): string {
  return bytesToHex(sha256(typeof data === 'string' ? utf8ToBytes(data) : data));
}

/**
 * SHA-256 (FIPS 180-4) as 64 lowercase hex digits; strings are hashed as their UTF-8 bytes. Node's native hash
 * when available, the portable one elsewhere: both give the same digest (a test checks them against the FIPS
 * examples and each other).
 */
export function sha256Hex(data: Sha256Input): string {
  return native === undefined ? portableSha256Hex(data) : nativeSha256Hex(native, data);
}
