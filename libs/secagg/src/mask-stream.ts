// The PRG that expands a 32-byte seed into a mask of m words modulo 2^k: the AES-256-CTR keystream (NIST SP 800-38A
// section 6.5) under the seed, zero IV, read as little-endian 32-bit words. A fresh key per (round, pair) or
// (round, participant) comes from HKDF, so one key never encrypts two streams and the zero IV is safe.
// The keystream is produced and applied in fixed-size chunks: memory is O(chunk) beyond the target vector, and the
// inner loop allocates nothing per element.

import { createCipheriv } from 'node:crypto';

import { encodeTuple } from './encoding.util';
import { hkdfSha256 } from './key-agreement';
import { compareIds, SECAGG_PROTOCOL } from './parameters';
import { modulusMask } from './quantisation';
import { SecAggErrorCode, SecAggException } from './secagg.exception';

/** Words of keystream per chunk (256 KiB): large enough to amortise the cipher call, small enough to stay in cache. */
export const MASK_CHUNK_WORDS = 65_536;

const ZERO_IV = Buffer.alloc(16);
const ZERO_CHUNK = Buffer.alloc(MASK_CHUNK_WORDS * 4);
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Adds (sign +1) or subtracts (sign −1) the mask expanded from `key` to `target`, modulo 2^k, in place. Both
 * directions of a pairwise mask come from the same key, so +PRG on one side and −PRG on the other cancel exactly.
 */
export function applyMask(target: Uint32Array, key: Uint8Array, sign: 1 | -1, modulusBits: number): void {
  if (key.length !== 32) {
    throw new SecAggException(SecAggErrorCode.MalformedMessage, `A mask key must be 32 bytes, got ${key.length}.`);
  }
  const mask = modulusMask(modulusBits);
  const cipher = createCipheriv('aes-256-ctr', key, ZERO_IV);
  for (let start = 0; start < target.length; start += MASK_CHUNK_WORDS) {
    const count = Math.min(MASK_CHUNK_WORDS, target.length - start);
    const words = keystreamWords(cipher.update(ZERO_CHUNK.subarray(0, count * 4)));
    if (sign === 1) {
      for (let i = 0; i < count; i++) target[start + i] = (target[start + i] + words[i]) & mask;
    } else {
      for (let i = 0; i < count; i++) target[start + i] = (target[start + i] - words[i]) & mask;
    }
  }
}

/**
 * The keystream bytes as little-endian words: a view when aligned on a little-endian machine (the usual case: Node
 * returns chunks this large in their own buffers), else a copy read word by word.
 */
function keystreamWords(bytes: Buffer): Uint32Array {
  const count = bytes.length >>> 2;
  if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) return new Uint32Array(bytes.buffer, bytes.byteOffset, count);
  const words = new Uint32Array(count);
  for (let i = 0; i < count; i++) words[i] = bytes.readUInt32LE(i * 4);
  return words;
}

/** The mask m words long for `key`, as a new vector (tests and tools; the protocol applies masks in place). */
export function expandMask(key: Uint8Array, length: number, modulusBits: number): Uint32Array {
  const out = new Uint32Array(length);
  applyMask(out, key, 1, modulusBits);
  return out;
}

/**
 * The AES key of participant `participantId`'s self-mask: HKDF-SHA-256 of its 32-byte seed b, salted with the
 * configuration hash (Bonawitz et al. 2017, §4: the self-mask PRG(b_u)).
 */
export function selfMaskKey(seed: Uint8Array, configHash: Uint8Array, participantId: string): Uint8Array {
  return hkdfSha256(seed, configHash, encodeTuple(`${SECAGG_PROTOCOL} self-mask`, [participantId]), 32);
}

/**
 * The AES key of the pairwise mask between two participants: HKDF-SHA-256 of their X25519 shared secret s_{u,v},
 * salted with the configuration hash, the two ids in roster order as `info` (Bonawitz et al. 2017, §4: PRG(s_{u,v})).
 */
export function pairwiseMaskKey(sharedSecret: Uint8Array, configHash: Uint8Array, a: string, b: string): Uint8Array {
  const [low, high] = compareIds(a, b) < 0 ? [a, b] : [b, a];
  return hkdfSha256(sharedSecret, configHash, encodeTuple(`${SECAGG_PROTOCOL} pairwise-mask`, [low, high]), 32);
}

/**
 * The sign with which `owner` adds its pairwise mask with `peer`: + when owner comes first in roster order, − when
 * it comes second, so the two masks cancel in the sum (Bonawitz et al. 2017, §4).
 */
export function pairwiseMaskSign(owner: string, peer: string): 1 | -1 {
  return compareIds(owner, peer) < 0 ? 1 : -1;
}
