import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { clipToNormInPlace, l2Norm } from './clipping.util';
import { PrivacyParameterError, PrivacyParameterErrorCode } from './privacy-parameter.exception';

describe('l2Norm', () => {
  it('is exact on a 3-4-5 triangle and 0 on the zero vector', () => {
    expect(l2Norm(new Float32Array([3, 4]))).toBe(5);
    expect(l2Norm(new Float64Array(7))).toBe(0);
  });

  it('accumulates in double even for Float32Array input, without overflow or underflow', () => {
    expect(l2Norm(new Float32Array([3e38, 3e38]))).toBeCloseTo(Math.SQRT2 * Math.fround(3e38), -30);
    expect(l2Norm(new Float64Array([1e-200, 1e-200]))).toBeCloseTo(Math.SQRT2 * 1e-200, 210);
    // 1e6 components of 1e-3: a float32 accumulator would drift; double gives 1 to ~1e-12.
    expect(l2Norm(new Float32Array(1_000_000).fill(1e-3))).toBeCloseTo(Math.fround(1e-3) * 1000, 9);
  });

  it('reports NaN and Infinity', () => {
    expect(l2Norm(new Float32Array([1, NaN]))).toBeNaN();
    expect(l2Norm(new Float64Array([1, -Infinity]))).toBe(Infinity);
  });
});

describe('clipToNormInPlace', () => {
  const vector = fc.array(fc.float({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true }), {
    minLength: 1,
    maxLength: 200,
  });
  const clip = fc.double({ min: 1e-3, max: 1e3, noNaN: true });

  it('no norm exceeds C after clipping (Float32Array), and the factor is the scaling applied', () => {
    fc.assert(
      fc.property(vector, clip, (values, clipNorm) => {
        const original = Float32Array.from(values);
        const clipped = Float32Array.from(values);
        const factor = clipToNormInPlace(clipped, clipNorm);
        expect(l2Norm(clipped)).toBeLessThanOrEqual(clipNorm);
        expect(factor).toBeGreaterThan(0);
        expect(factor).toBeLessThanOrEqual(1);
        if (l2Norm(original) <= clipNorm) {
          expect(factor).toBe(1);
          expect(clipped).toEqual(original);
        } else {
          expect(l2Norm(clipped)).toBeGreaterThan(clipNorm * (1 - 1e-6));
          clipped.forEach((v, i) =>
            expect(Math.abs(v - original[i]! * factor)).toBeLessThanOrEqual(Math.abs(original[i]!) * 1e-6 + 1e-30),
          );
        }
      }),
      { numRuns: 200 },
    );
  });

  it('no norm exceeds C after clipping (Float64Array)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 200 }),
        clip,
        (values, clipNorm) => {
          const clipped = Float64Array.from(values);
          clipToNormInPlace(clipped, clipNorm);
          expect(l2Norm(clipped)).toBeLessThanOrEqual(clipNorm);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('throws on NaN input (which would otherwise pass every norm test) and on a bad clip norm', () => {
    const check = (run: () => unknown, code: PrivacyParameterErrorCode): void => {
      try {
        run();
        expect.unreachable('should have thrown');
      } catch (error) {
        expect(error).toBeInstanceOf(PrivacyParameterError);
        expect((error as PrivacyParameterError).code).toBe(code);
      }
    };
    check(() => clipToNormInPlace(new Float32Array([NaN, 1]), 1), PrivacyParameterErrorCode.NonFiniteValue);
    check(() => clipToNormInPlace(new Float32Array([1]), 0), PrivacyParameterErrorCode.InvalidClipNorm);
    check(() => clipToNormInPlace(new Float32Array([1]), Infinity), PrivacyParameterErrorCode.InvalidClipNorm);
  });
});
