import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AggregationErrorCode, AggregationException } from './aggregation.exception';
import { coordinateMedian, trimmedMean } from './robust-aggregation';

const f32 = (...xs: number[]): Float32Array => Float32Array.from(xs);

describe('robust aggregators (Yin et al. 2018; not streaming)', () => {
  it('coordinate-wise median by hand, odd and even counts', () => {
    // column 0: {1, 9, 3} → 3; column 1: {-5, 0, 100} → 0
    expect(Array.from(coordinateMedian([f32(1, -5), f32(9, 0), f32(3, 100)]))).toEqual([3, 0]);
    // column 0: {1, 9, 3, 5} → (3 + 5)/2 = 4
    expect(Array.from(coordinateMedian([f32(1), f32(9), f32(3), f32(5)]))).toEqual([4]);
  });

  it('trimmed mean drops ⌊βn⌋ from each end by hand', () => {
    // n = 5, β = 0.2 → drop 1 each side: {-1000, 1, 2, 3, 1000} → (1 + 2 + 3)/3 = 2
    const updates = [f32(1000), f32(2), f32(-1000), f32(3), f32(1)];
    expect(Array.from(trimmedMean(updates, 0.2))).toEqual([2]);
    // β = 0 is the plain mean: (1000 + 2 − 1000 + 3 + 1)/5 = 1.2
    expect(trimmedMean(updates, 0)[0]).toBeCloseTo(1.2, 6);
  });

  it('ignores a minority of arbitrarily large outliers (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -100, max: 100 }), { minLength: 5, maxLength: 5 }), (honest) => {
        const updates = [...honest.map((x) => f32(x)), f32(1e30), f32(-1e30)];
        const med = coordinateMedian(updates)[0];
        expect(med).toBeGreaterThanOrEqual(Math.min(...honest));
        expect(med).toBeLessThanOrEqual(Math.max(...honest));
        const tm = trimmedMean(updates, 2 / 7)[0];
        expect(tm).toBeGreaterThanOrEqual(Math.min(...honest));
        expect(tm).toBeLessThanOrEqual(Math.max(...honest));
      }),
      { numRuns: 100 },
    );
  });

  it('refuses empty, ragged or non-finite batches and bad fractions', () => {
    const code = (run: () => unknown) => {
      try {
        run();
      } catch (error) {
        return (error as AggregationException).code;
      }
      return undefined;
    };
    expect(code(() => coordinateMedian([]))).toBe(AggregationErrorCode.EmptyAggregate);
    expect(code(() => coordinateMedian([f32(1, 2), f32(1)]))).toBe(AggregationErrorCode.LengthMismatch);
    expect(code(() => trimmedMean([f32(Number.NaN)], 0))).toBe(AggregationErrorCode.NonFiniteValue);
    expect(code(() => trimmedMean([f32(1)], 0.5))).toBe(AggregationErrorCode.InvalidParameter);
  });
});
