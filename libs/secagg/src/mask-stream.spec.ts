import { createCipheriv } from 'node:crypto';
import { describe, expect, it } from 'vitest';

import { applyMask, applyMasks, expandMask, MASK_CHUNK_WORDS, pairwiseMaskKey, pairwiseMaskSign } from './mask-stream';
import { fromHex } from './encoding.util';

const key = Uint8Array.from({ length: 32 }, (_, i) => i * 7 + 1);

describe('the mask PRG (AES-256-CTR keystream as little-endian words)', () => {
  it('equals AES-256 of the counter blocks 0, 1, 2, … computed independently with ECB', () => {
    const blocks = Buffer.alloc(48);
    for (let counter = 0; counter < 3; counter++) blocks.writeUInt32BE(counter, counter * 16 + 12);
    const ecb = createCipheriv('aes-256-ecb', key, null).setAutoPadding(false);
    const keystream = Buffer.concat([ecb.update(blocks), ecb.final()]);
    const expected = Array.from({ length: 12 }, (_, i) => keystream.readUInt32LE(i * 4));
    expect(Array.from(expandMask(key, 12, 32))).toEqual(expected);
  });

  it('is the same stream whatever the chunking: a long mask starts with the short one and crosses chunks seamlessly', () => {
    const long = expandMask(key, MASK_CHUNK_WORDS * 2 + 5, 32);
    const short = expandMask(key, MASK_CHUNK_WORDS + 3, 32);
    expect(Array.from(long.subarray(0, short.length))).toEqual(Array.from(short));
  });

  it('reduces to k bits and cancels exactly: +mask then −mask restores the vector', () => {
    for (const bits of [2, 16, 31, 32]) {
      const v = Uint32Array.from({ length: 1000 }, (_, i) => (i * 2654435761) % 2 ** bits);
      const original = v.slice();
      applyMask(v, key, 1, bits);
      expect(v.every((x) => x < 2 ** bits)).toBe(true);
      expect(v.some((x, i) => x !== original[i])).toBe(true);
      applyMask(v, key, -1, bits);
      expect(Array.from(v)).toEqual(Array.from(original));
    }
  });

  it('applies several masks in one sweep exactly as one after the other', () => {
    const keys = [1, 2, 3].map((seed) => Uint8Array.from({ length: 32 }, (_, i) => (i * seed + 3) & 0xff));
    const length = MASK_CHUNK_WORDS * 2 + 17;
    const fused = Uint32Array.from({ length }, (_, i) => i);
    const serial = fused.slice();
    applyMasks(
      fused,
      [
        { key: keys[0]!, sign: 1 },
        { key: keys[1]!, sign: -1 },
        { key: keys[2]!, sign: 1 },
      ],
      24,
    );
    applyMask(serial, keys[0]!, 1, 24);
    applyMask(serial, keys[1]!, -1, 24);
    applyMask(serial, keys[2]!, 1, 24);
    expect(Array.from(fused)).toEqual(Array.from(serial));
  });

  it('derives one key per unordered pair and opposite signs on its two ends', () => {
    const secret = fromHex('11'.repeat(32), 32, 'secret');
    const hash = fromHex('22'.repeat(32), 32, 'hash');
    expect(Array.from(pairwiseMaskKey(secret, hash, 'a', 'b'))).toEqual(
      Array.from(pairwiseMaskKey(secret, hash, 'b', 'a')),
    );
    expect(Array.from(pairwiseMaskKey(secret, hash, 'a', 'b'))).not.toEqual(
      Array.from(pairwiseMaskKey(secret, hash, 'a', 'c')),
    );
    expect(pairwiseMaskSign('a', 'b')).toBe(1);
    expect(pairwiseMaskSign('b', 'a')).toBe(-1);
  });
});
