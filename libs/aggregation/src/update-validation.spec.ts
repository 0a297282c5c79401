import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AggregationErrorCode, AggregationException } from './aggregation.exception';
import { l2Norm, squaredNorm, validateUpdate } from './update-validation';

function codeOf(run: () => unknown): AggregationErrorCode | undefined {
  try {
    run();
  } catch (error) {
    if (error instanceof AggregationException) return error.code;
    throw error;
  }
  return undefined;
}

describe('validateUpdate', () => {
  it('returns the L2 norm of an acceptable update', () => {
    // 3-4-5 triangle, plus zeros: ‖(3, 4, 0, 0, 0)‖ = 5
    expect(validateUpdate(Float32Array.from([3, 4, 0, 0, 0]), { length: 5 })).toBe(5);
    expect(validateUpdate(Float32Array.from([3, 4, 0, 0, 0]), { length: 5, maxNorm: 5 })).toBe(5);
  });

  it('refuses wrong length, non-finite values and excessive norm with distinct codes', () => {
    expect(codeOf(() => validateUpdate(new Float32Array(3), { length: 4 }))).toBe(AggregationErrorCode.LengthMismatch);
    expect(codeOf(() => validateUpdate(Float32Array.from([0, Number.NaN]), { length: 2 }))).toBe(
      AggregationErrorCode.NonFiniteValue,
    );
    expect(codeOf(() => validateUpdate(Float32Array.from([Number.POSITIVE_INFINITY, 0]), { length: 2 }))).toBe(
      AggregationErrorCode.NonFiniteValue,
    );
    expect(codeOf(() => validateUpdate(Float32Array.from([3, 4]), { length: 2, maxNorm: 4.999 }))).toBe(
      AggregationErrorCode.NormExceeded,
    );
    expect(codeOf(() => validateUpdate(Float32Array.from([3, 4]), { length: 2, maxNorm: -1 }))).toBe(
      AggregationErrorCode.InvalidParameter,
    );
  });

  it('does not overflow on the largest float32 values', () => {
    // max float32 ≈ 3.4028e38: its square overflows float32 but not float64.
    const big = Float32Array.from([3.4028234663852886e38, 3.4028234663852886e38]);
    const norm = validateUpdate(big, { length: 2 });
    expect(Math.abs(norm / (3.4028234663852886e38 * Math.SQRT2) - 1)).toBeLessThan(1e-15);
  });

  it('agrees with a one-at-a-time float64 sum of squares (property)', () => {
    fc.assert(
      fc.property(fc.float32Array({ noNaN: true, noDefaultInfinity: true, maxLength: 40 }), (u) => {
        let s = 0;
        for (const x of u) s += x * x;
        expect(Math.abs(squaredNorm(u) - s)).toBeLessThanOrEqual(1e-12 * s);
        expect(Math.abs(l2Norm(u) - Math.sqrt(s))).toBeLessThanOrEqual(1e-12 * Math.sqrt(s));
      }),
      { numRuns: 200 },
    );
  });
});
