import { describe, expect, it } from 'vitest';

import { addNoiseShare } from './noise-share';
import { dequantiseSum } from './quantisation';
import { SecAggErrorCode, SecAggException } from './secagg.exception';

describe('addNoiseShare', () => {
  it('adds integers modulo 2^k, so a negative or wrapping value reads back as the centred sum', () => {
    // −3 + (−5) = −8; 2^31 − 2 + 1 = 2^31 − 1; 1 + 2^40 wraps to 1 mod 2^32; at k = 8, 100 + 50 = 150 ≡ −106.
    const v32 = Uint32Array.from([2 ** 32 - 3, 2 ** 31 - 2, 1]);
    addNoiseShare(v32, Float64Array.from([-5, 1, 2 ** 40]), 32);
    expect(Array.from(dequantiseSum(v32, { scale: 1, modulusBits: 32 }))).toEqual([-8, 2 ** 31 - 1, 1]);
    const v8 = Uint32Array.from([100]);
    addNoiseShare(v8, Float64Array.from([50]), 8);
    expect(v8[0]).toBe(150);
    expect(dequantiseSum(v8, { scale: 1, modulusBits: 8 })[0]).toBe(-106);
  });

  it('refuses a share that is not integers below 2^52, or of another length', () => {
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (error) {
        return error instanceof SecAggException ? error.code : 'other';
      }
      return 'none';
    };
    expect(code(() => addNoiseShare(new Uint32Array(2), new Float64Array(3), 32))).toBe(SecAggErrorCode.VectorInvalid);
    expect(code(() => addNoiseShare(new Uint32Array(1), Float64Array.from([0.5]), 32))).toBe(
      SecAggErrorCode.VectorInvalid,
    );
    expect(code(() => addNoiseShare(new Uint32Array(1), Float64Array.from([2 ** 52]), 32))).toBe(
      SecAggErrorCode.VectorInvalid,
    );
    expect(code(() => addNoiseShare(new Uint32Array(1), Float64Array.from([Number.NaN]), 32))).toBe(
      SecAggErrorCode.VectorInvalid,
    );
  });
});
