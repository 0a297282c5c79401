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

/**
 * Words per chunk (64 KiB of keystream, 64 KiB of target): large enough to amortise the cipher call, small enough that
 * the target chunk and one keystream chunk stay in the core's L2 cache while every mask is folded in.
 */
export const MASK_CHUNK_WORDS = 16_384;

const ZERO_IV = Buffer.alloc(16);
const ZERO_CHUNK = Buffer.alloc(MASK_CHUNK_WORDS * 4);
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** One mask to apply: the AES key of its PRG and whether it is added (+1) or subtracted (−1). */
export interface MaskTerm {
  key: Uint8Array;
  sign: 1 | -1;
}

/**
 * Adds (sign +1) or subtracts (sign −1) the mask expanded from `key` to `target`, modulo 2^k, in place. Both
 * directions of a pairwise mask come from the same key, so +PRG on one side and −PRG on the other cancel exactly.
 */
export function applyMask(target: Uint32Array, key: Uint8Array, sign: 1 | -1, modulusBits: number): void {
  applyMasks(target, [{ key, sign }], modulusBits);
}

/**
 * Applies several masks in one sweep over `target`: chunk by chunk, every mask's keystream for that chunk is
 * generated and folded in while the chunk is still in cache, instead of one full pass over the vector per mask.
 * Same result as applying the masks one after the other (addition modulo 2^k commutes).
 */
export function applyMasks(target: Uint32Array, terms: readonly MaskTerm[], modulusBits: number): void {
  for (const term of terms) {
    if (term.key.length !== 32) {
      throw new SecAggException(
        SecAggErrorCode.MalformedMessage,
        `A mask key must be 32 bytes, got ${term.key.length}.`,
      );
    }
  }
  const mask = modulusMask(modulusBits);
  const ciphers = terms.map((term) => createCipheriv('aes-256-ctr', term.key, ZERO_IV));
  for (let start = 0; start < target.length; start += MASK_CHUNK_WORDS) {
    const count = Math.min(MASK_CHUNK_WORDS, target.length - start);
    const zeros = ZERO_CHUNK.subarray(0, count * 4);
    const chunk = target.subarray(start, start + count);
    for (let t = 0; t < terms.length; t++) {
      const words = keystreamWords(ciphers[t]!.update(zeros));
      if (terms[t]!.sign === 1) addWords(chunk, words, count, mask);
      else subtractWords(chunk, words, count, mask);
    }
  }
}

function addWords(chunk: Uint32Array, words: Uint32Array, count: number, mask: number): void {
  for (let i = 0; i < count; i++) chunk[i] = (chunk[i]! + words[i]!) & mask;
}

function subtractWords(chunk: Uint32Array, words: Uint32Array, count: number, mask: number): void {
  for (let i = 0; i < count; i++) chunk[i] = (chunk[i]! - words[i]!) & mask;
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
