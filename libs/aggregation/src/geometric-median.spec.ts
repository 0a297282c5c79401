import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AggregationErrorCode } from './aggregation.exception';
import { geometricMedian, geometricMedianBlockwise } from './geometric-median';
import {
  around,
  asyncRefusalCode,
  countingReader,
  expectSameBits,
  gaussianVector,
  maxAbsDifference,
  points,
  refusalCode,
  seededNormal,
} from './robust.test-util';
import { inMemoryBlockReader } from './update-blocks';

const TIGHT = { tolerance: 0, maxIterations: 2000, smoothing: 1e-9 };

/** Σ‖z − uₖ‖ in float64. */
function sumOfDistances(z: ArrayLike<number>, updates: readonly Float32Array[]): number {
  return updates.reduce((g, u) => g + Math.sqrt(u.reduce((s, x, i) => s + (x - z[i]!) ** 2, 0)), 0);
}

/**
 * An independent optimiser for the reference: compass search (Kolda, Lewis, Torczon 2003) on the sum of distances,
 * from the coordinate-wise mean, trying ± each axis and ± random directions with a halving step. Slow, derivative
 * free, shares no code or formula with Weiszfeld.
 */
function bruteForceMedian(updates: readonly Float32Array[], seed: number): { point: number[]; objective: number } {
  const d = updates[0]!.length;
  const normal = seededNormal(seed);
  let z = Array.from({ length: d }, (_, i) => updates.reduce((s, u) => s + u[i]!, 0) / updates.length);
  let g = sumOfDistances(z, updates);
  let step = Math.max(...updates.map((u) => Math.sqrt(u.reduce((s, x, i) => s + (x - z[i]!) ** 2, 0))));
  const axes = Array.from({ length: d }, (_, a) => Array.from({ length: d }, (_, i) => (i === a ? 1 : 0)));
  while (step > 1e-10) {
    const random = Array.from({ length: 2 * d }, () => {
      const v = Array.from({ length: d }, () => normal());
      const norm = Math.hypot(...v);
      return v.map((x) => x / norm);
    });
    let improved = false;
    for (const direction of [...axes, ...random]) {
      for (const sign of [1, -1]) {
        const candidate = z.map((x, i) => x + sign * step * direction[i]!);
        const value = sumOfDistances(candidate, updates);
        if (value < g) {
          z = candidate;
          g = value;
          improved = true;
        }
      }
    }
    if (!improved) step /= 2;
  }
  return { point: z, objective: g };
}

/** Weiszfeld written directly on the vectors in float64 (the textbook form), for comparison on long vectors. */
function vectorWeiszfeld(updates: readonly Float32Array[], iterations: number, smoothing: number): Float64Array {
  const m = updates[0]!.length;
  let z = new Float64Array(m);
  updates.forEach((u) => u.forEach((x, i) => (z[i]! += x / updates.length)));
  for (let it = 0; it < iterations; it += 1) {
    const beta = updates.map((u) => 1 / Math.max(smoothing, Math.sqrt(u.reduce((s, x, i) => s + (x - z[i]!) ** 2, 0))));
    const total = beta.reduce((a, b) => a + b, 0);
    const next = new Float64Array(m);
    updates.forEach((u, k) => u.forEach((x, i) => (next[i]! += (beta[k]! * x) / total)));
    z = next;
  }
  return z;
}

describe('geometric median by smoothed Weiszfeld (Pillutla et al. 2019)', () => {
  it('collinear points: the geometric median is the middle point (1-D median)', () => {
    const updates = points([1, 1], [2, 2], [3, 3], [10, 10], [20, 20]);
    const { delta, trace } = geometricMedian(updates, TIGHT);
    expect(Math.abs(delta[0]! - 3)).toBeLessThan(1e-6);
    expect(Math.abs(delta[1]! - 3)).toBeLessThan(1e-6);
    // Objective at (3, 3): √2·(2 + 1 + 0 + 7 + 17) = 27√2; α = 1/5 each.
    expect(trace.objective).toBeCloseTo((27 * Math.SQRT2) / 5, 9);
  });

  it('equilateral triangle: the centroid (its Fermat point), reached by the default stopping rule', () => {
    const h = Math.sqrt(3) / 2;
    const updates = points([0, 0], [1, 0], [0.5, h]);
    const { delta, trace } = geometricMedian(updates);
    expect(delta[0]).toBeCloseTo(0.5, 6);
    expect(delta[1]).toBeCloseTo(h / 3, 6);
    expect(trace.converged).toBe(true);
  });

  it('a triangle with a 120°+ angle: the median is that vertex (Fermat–Torricelli)', () => {
    // Angle at (0, 0) between (1, 0) and (−1, 0.1) is about 174°.
    const { delta } = geometricMedian(points([1, 0], [0, 0], [-1, 0.1]), TIGHT);
    expect(Math.hypot(delta[0]!, delta[1]!)).toBeLessThan(1e-6);
  });

  it('square corners: the centre, converged at once (the start, the mean, is already optimal)', () => {
    const { delta, trace } = geometricMedian(points([0, 0], [1, 0], [1, 1], [0, 1]));
    expect(Array.from(delta)).toEqual([0.5, 0.5]);
    expect(trace.iterations).toBe(1);
    expect(trace.converged).toBe(true);
    expect(trace.coefficients).toEqual([0.25, 0.25, 0.25, 0.25]);
  });

  it('a point carrying half the weight or more is the weighted geometric median', () => {
    const updates = points([0, 0], [4, 0], [0, 4], [4, 4]);
    const { delta, trace } = geometricMedian(updates, { ...TIGHT, weights: [3, 1, 1, 1] });
    expect(Math.hypot(delta[0]!, delta[1]!)).toBeLessThan(1e-6);
    expect(trace.weighting).toBe('weighted');
  });

  it('agrees with a brute-force optimiser on random point sets (property, 2–5 dimensions)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 3, max: 9 }), fc.integer({ min: 2, max: 5 }), fc.integer(), (n, d, seed) => {
        const normal = seededNormal(seed);
        const updates = Array.from({ length: n }, () => gaussianVector(d, normal, 3));
        const weiszfeld = geometricMedian(updates, { tolerance: 1e-12, maxIterations: 5000, smoothing: 1e-9 });
        const brute = bruteForceMedian(updates, seed);
        // The objective is flat near its minimum: compare values tightly, points to a looser tolerance.
        const found = sumOfDistances(weiszfeld.delta, updates);
        expect(found).toBeLessThanOrEqual(brute.objective * (1 + 1e-6) + 1e-6);
        expect(maxAbsDifference(weiszfeld.delta, brute.point)).toBeLessThan(1e-3);
        expect(weiszfeld.trace.objective * n).toBeCloseTo(found, 4);
      }),
      { numRuns: 40 },
    );
  });

  it('on long vectors equals Weiszfeld run directly on the vectors (the distance-matrix form is exact)', () => {
    const normal = seededNormal(5);
    const centre = gaussianVector(5000, normal, 0.01);
    const updates = [
      ...Array.from({ length: 6 }, () => around(centre, normal, 0.02)),
      Float32Array.from(centre, (x) => 10 * x),
      Float32Array.from(centre, (x) => -x),
    ];
    const iterations = 25;
    const fromDistances = geometricMedian(updates, { tolerance: 0, maxIterations: iterations });
    const direct = vectorWeiszfeld(updates, iterations, 1e-6);
    // float32 rounding of the result, plus float64 noise: 1e-6 relative to the largest coordinate is ample.
    const scale = Math.max(...Array.from(direct, Math.abs));
    expect(maxAbsDifference(fromDistances.delta, direct)).toBeLessThan(1e-6 * scale);
  });

  it('stays with the honest majority when 3 of 7 updates are moved arbitrarily far', () => {
    const normal = seededNormal(9);
    const honest = Array.from({ length: 4 }, () => gaussianVector(8, normal));
    const attack = Array.from({ length: 3 }, () => gaussianVector(8, normal, 1e6));
    const { delta } = geometricMedian([...attack, ...honest]);
    expect(Math.max(...Array.from(delta, Math.abs))).toBeLessThan(20);
  });

  it('stops at maxIterations and says it did not converge', () => {
    const { trace } = geometricMedian(points([1, 1], [2, 2], [3, 3], [10, 10], [20, 20]), {
      tolerance: 0,
      maxIterations: 3,
    });
    expect(trace).toMatchObject({ iterations: 3, converged: false, maxIterations: 3, tolerance: 0 });
  });

  it('blockwise equals in memory bit for bit, reading all updates once and once more for the result', async () => {
    const normal = seededNormal(21);
    const updates = Array.from({ length: 8 }, () => gaussianVector(70_001, normal, 0.01));
    const inMemory = geometricMedian(updates);
    const reader = countingReader(updates);
    const blockwise = await geometricMedianBlockwise(reader);
    expect(blockwise.trace).toEqual(inMemory.trace);
    expectSameBits(blockwise.delta, inMemory.delta);
    expect(reader.reads).toEqual(updates.map(() => 4)); // 2 blocks × 2 passes
    const small = await geometricMedianBlockwise(inMemoryBlockReader(updates), { blockParameters: 4096 });
    expect(maxAbsDifference(small.delta, inMemory.delta)).toBeLessThan(1e-9);
  });

  it('refuses bad tolerance, iterations, smoothing and weights', async () => {
    const updates = points([0], [1], [2]);
    expect(refusalCode(() => geometricMedian(updates, { tolerance: -1 }))).toBe(AggregationErrorCode.InvalidParameter);
    expect(refusalCode(() => geometricMedian(updates, { maxIterations: 0 }))).toBe(
      AggregationErrorCode.InvalidParameter,
    );
    expect(refusalCode(() => geometricMedian(updates, { smoothing: 0 }))).toBe(AggregationErrorCode.InvalidParameter);
    expect(refusalCode(() => geometricMedian(updates, { weights: [1, 1] }))).toBe(AggregationErrorCode.LengthMismatch);
    expect(refusalCode(() => geometricMedian(updates, { weights: [1, -1, 1] }))).toBe(
      AggregationErrorCode.InvalidWeight,
    );
    expect(refusalCode(() => geometricMedian([]))).toBe(AggregationErrorCode.EmptyAggregate);
    const reader = countingReader(updates);
    expect(await asyncRefusalCode(() => geometricMedianBlockwise(reader, { smoothing: -1 }))).toBe(
      AggregationErrorCode.InvalidParameter,
    );
    expect(reader.reads).toEqual([0, 0, 0]);
  });
});
