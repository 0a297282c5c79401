import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { decodeMaskedVector, encodeMaskedVector, maskedVectorBytes } from './masked-vector-codec';
import { SecAggErrorCode } from './secagg.exception';
import { refusalCode } from './secagg-round.test-util';

describe('the masked-vector codec', () => {
  it('packs k-bit values least significant bit first', () => {
    expect(Array.from(encodeMaskedVector(Uint32Array.from([1, 2, 3]), 4))).toEqual([0x21, 0x03]);
    expect(Array.from(encodeMaskedVector(Uint32Array.from([0x7ff]), 11))).toEqual([0xff, 0x07]);
    expect(Array.from(encodeMaskedVector(Uint32Array.from([0x01020304]), 32))).toEqual([4, 3, 2, 1]);
  });

  it('round-trips any vector of values below 2^k in exactly ⌈m·k/8⌉ bytes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 32 }), fc.array(fc.nat(), { maxLength: 50 }), (bits, raw) => {
        const vector = Uint32Array.from(raw, (x) => x % 2 ** bits);
        const bytes = encodeMaskedVector(vector, bits);
        expect(bytes.length).toBe(maskedVectorBytes(vector.length, bits));
        expect(Array.from(decodeMaskedVector(bytes, vector.length, bits))).toEqual(Array.from(vector));
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a wrong byte count and non-zero padding bits', () => {
    expect(refusalCode(() => decodeMaskedVector(new Uint8Array(3), 3, 4))).toBe(SecAggErrorCode.MalformedMessage);
    expect(refusalCode(() => decodeMaskedVector(Uint8Array.from([0x21, 0x13]), 3, 4))).toBe(
      SecAggErrorCode.MalformedMessage,
    );
  });
});
