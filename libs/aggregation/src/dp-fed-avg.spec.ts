import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AggregationErrorCode, AggregationException } from './aggregation.exception';
import type { AggregatedDelta, SumDeltaAggregator } from './delta-aggregator';
import { createDpFedAvgAggregator, DpFedAvgAggregator, type GaussianNoiseSource } from './dp-fed-avg';
import { l2Norm } from './update-validation';

const f32 = (...xs: number[]): Float32Array => Float32Array.from(xs);

/** A sum strategy that records exactly what the wrapper hands it (copies, since the wrapper reuses a buffer). */
class RecordingSum implements SumDeltaAggregator {
  readonly received: { update: Float32Array; weight: number }[] = [];
  constructor(readonly length: number) {}
  get count(): number {
    return this.received.length;
  }
  add(update: Float32Array, weight: number): [] {
    this.received.push({ update: update.slice(), weight });
    return [];
  }
  finish(): AggregatedDelta {
    return this.finishWithDenominator(this.received.reduce((a, r) => a + r.weight, 0));
  }
  finishWithDenominator(denominator: number): AggregatedDelta {
    const delta = new Float32Array(this.length);
    for (const { update, weight } of this.received) update.forEach((x, i) => (delta[i] += (weight * x) / denominator));
    return { delta, count: this.count, totalWeight: this.count, trace: [] };
  }
}

/** Deterministic stand-in for the secure sampler: stddev × a fixed pattern, and a log of what was asked. */
function patternNoise(pattern: readonly number[]): { source: GaussianNoiseSource; calls: [number, number][] } {
  const calls: [number, number][] = [];
  const source: GaussianNoiseSource = (length, stddev) => {
    calls.push([length, stddev]);
    return Float64Array.from({ length }, (_, i) => stddev * pattern[i % pattern.length]);
  };
  return { source, calls };
}

function codeOf(run: () => unknown): AggregationErrorCode | undefined {
  try {
    run();
  } catch (error) {
    if (error instanceof AggregationException) return error.code;
    throw error;
  }
  return undefined;
}

describe('DpFedAvgAggregator (McMahan et al. 2018)', () => {
  it('clips, sums with weight 1, divides by the fixed denominator and adds z·S/W noise — by hand', () => {
    // S = 1, z = 2, W = 4 expected silos (only 2 report).
    // u1 = [3, 4, 0], ‖u1‖ = 5 > S → scaled by 1/5 → [0.6, 0.8, 0]; u2 = [0, 0, 0.5], ‖u2‖ = 0.5 ≤ S → unchanged.
    // sum = [0.6, 0.8, 0.5]; sum / W = [0.15, 0.2, 0.125]
    // noise stddev on the mean = z·S/W = 2·1/4 = 0.5; pattern [1, -1, 0.5] → noise [0.5, -0.5, 0.25]
    // result = [0.65, -0.3, 0.375]
    const { source, calls } = patternNoise([1, -1, 0.5]);
    const dp = createDpFedAvgAggregator(3, { clippingNorm: 1, noiseMultiplier: 2, expectedSilos: 4 }, source);
    const trace1 = dp.add(f32(3, 4, 0), 100);
    const trace2 = dp.add(f32(0, 0, 0.5), 1);
    const out = dp.finish();
    expect(calls).toEqual([[3, 0.5]]);
    expect(dp.meanNoiseStddev).toBe(0.5);
    [0.65, -0.3, 0.375].forEach((e, i) => expect(out.delta[i]).toBeCloseTo(e, 6));
    expect(out.count).toBe(2);
    expect(trace1).toEqual([
      { step: 'weight', reportedWeight: 100, appliedWeight: 1 },
      { step: 'clip', norm: 5, clippingNorm: 1, factor: 0.2 * (1 - 2 ** -23) },
    ]);
    expect(trace2[1]).toEqual({ step: 'clip', norm: 0.5, clippingNorm: 1, factor: 1 });
    expect(out.trace).toEqual([
      { step: 'mean', weighting: 'unweighted', count: 2, totalWeight: 2, denominator: 4 },
      { step: 'noise', mechanism: 'gaussian', noiseMultiplier: 2, clippingNorm: 1, denominator: 4, stddev: 0.5 },
    ]);
  });

  it('never lets a clipped update exceed S, and passes small ones through untouched (property)', () => {
    fc.assert(
      fc.property(
        fc.float32Array({
          minLength: 1,
          maxLength: 30,
          noNaN: true,
          noDefaultInfinity: true,
          min: Math.fround(-1e30),
          max: Math.fround(1e30),
        }),
        fc.double({ min: 1e-6, max: 1e6, noNaN: true }),
        (update, S) => {
          const inner = new RecordingSum(update.length);
          const dp = new DpFedAvgAggregator(
            inner,
            { clippingNorm: S, noiseMultiplier: 1, expectedSilos: 1 },
            () => new Float64Array(update.length),
          );
          const [, clip] = dp.add(update, 7);
          const { update: seen, weight } = inner.received[0];
          expect(weight).toBe(1);
          expect(l2Norm(seen)).toBeLessThanOrEqual(S);
          if (l2Norm(update) <= S) {
            expect(seen).toEqual(update);
            expect(clip).toMatchObject({ step: 'clip', factor: 1 });
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('does not modify the caller’s update when clipping', () => {
    const u = f32(30, 40);
    const dp = createDpFedAvgAggregator(2, { clippingNorm: 1, noiseMultiplier: 0, expectedSilos: 1 }, () => {
      throw new Error('z = 0 must not draw noise');
    });
    dp.add(u, 1);
    expect(Array.from(u)).toEqual([30, 40]);
    const out = dp.finish();
    expect(out.delta[0]).toBeCloseTo(0.6, 6);
    expect(out.trace[1]).toMatchObject({ step: 'noise', stddev: 0 });
  });

  it('refuses bad updates without changing the aggregate', () => {
    const dp = createDpFedAvgAggregator(2, { clippingNorm: 1, noiseMultiplier: 0, expectedSilos: 2 }, () => f32(0, 0));
    dp.add(f32(0.5, 0), 1);
    expect(codeOf(() => dp.add(f32(1, Number.NaN), 1))).toBe(AggregationErrorCode.NonFiniteValue);
    expect(codeOf(() => dp.add(f32(1), 1))).toBe(AggregationErrorCode.LengthMismatch);
    expect(codeOf(() => dp.add(f32(1, 1), 0))).toBe(AggregationErrorCode.InvalidWeight);
    expect(dp.count).toBe(1);
    expect(Array.from(dp.finish().delta)).toEqual([0.25, 0]);
  });

  it('refuses a noise source that returns the wrong length or non-finite samples', () => {
    const short = createDpFedAvgAggregator(
      3,
      { clippingNorm: 1, noiseMultiplier: 1, expectedSilos: 1 },
      () => new Float64Array(2),
    );
    short.add(f32(0, 0, 0), 1);
    expect(codeOf(() => short.finish())).toBe(AggregationErrorCode.NoiseSourceInvalid);
    const nan = createDpFedAvgAggregator(2, { clippingNorm: 1, noiseMultiplier: 1, expectedSilos: 1 }, () =>
      f32(0, Number.NaN),
    );
    nan.add(f32(0, 0), 1);
    expect(codeOf(() => nan.finish())).toBe(AggregationErrorCode.NoiseSourceInvalid);
  });

  it('validates its parameters', () => {
    const noise: GaussianNoiseSource = (n) => new Float64Array(n);
    for (const options of [
      { clippingNorm: 0, noiseMultiplier: 1, expectedSilos: 1 },
      { clippingNorm: 1, noiseMultiplier: -1, expectedSilos: 1 },
      { clippingNorm: 1, noiseMultiplier: 1, expectedSilos: 0 },
      { clippingNorm: Number.POSITIVE_INFINITY, noiseMultiplier: 1, expectedSilos: 1 },
    ]) {
      expect(codeOf(() => createDpFedAvgAggregator(2, options, noise))).toBe(AggregationErrorCode.InvalidParameter);
    }
  });
});
