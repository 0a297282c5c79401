import { latticeNoisePlan, latticeNoisySum, SeededRandomSource } from '@tessera/dp';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AggregationErrorCode, AggregationException } from './aggregation.exception';
import type { AggregatedDelta, AggregatedSum, SumDeltaAggregator } from './delta-aggregator';
import { createDpFedAvgAggregator, DpFedAvgAggregator, type SumNoiseMechanism } from './dp-fed-avg';
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
    for (const { update, weight } of this.received) update.forEach((x, i) => (delta[i]! += (weight * x) / denominator));
    return { delta, count: this.count, totalWeight: this.count, trace: [] };
  }
  finishSum(): AggregatedSum {
    const sum = new Float64Array(this.length);
    for (const { update, weight } of this.received) update.forEach((x, i) => (sum[i]! += weight * x));
    return { sum, count: this.count, totalWeight: this.count, weighting: 'unweighted' };
  }
}

/** Deterministic stand-in for the mechanism: z·S × a fixed pattern added to the sum, and a log of what was asked. */
function patternNoise(pattern: readonly number[]): { source: SumNoiseMechanism; calls: [number[], number, number][] } {
  const calls: [number[], number, number][] = [];
  const source: SumNoiseMechanism = (sum, { clipNorm, noiseMultiplier }) => {
    calls.push([Array.from(sum), clipNorm, noiseMultiplier]);
    const stddev = clipNorm * noiseMultiplier;
    return {
      sum: sum.map((x, i) => x + stddev * pattern[i % pattern.length]!),
      plan: { effectiveStddev: stddev, granularity: 2 ** -30 },
    };
  };
  return { source, calls };
}

/** A mechanism that returns `values` as the noisy sum, claiming `effectiveStddev`. */
const fixedNoise =
  (values: () => Float64Array, effectiveStddev = 1e9): SumNoiseMechanism =>
  () => ({ sum: values(), plan: { effectiveStddev, granularity: 1 } });

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
  it('clips, sums with weight 1, noises the sum, then divides by the fixed denominator — by hand', () => {
    // S = 1, z = 2, W = 4 expected silos (only 2 report).
    // u1 = [3, 4, 0], ‖u1‖ = 5 > S → scaled by 1/5 → [0.6, 0.8, 0]; u2 = [0, 0, 0.5], ‖u2‖ = 0.5 ≤ S → unchanged.
    // sum = [0.6, 0.8, 0.5]; noise on the sum z·S = 2 × pattern [1, -1, 0.5] = [2, -2, 1] → [2.6, -1.2, 1.5]
    // result = noisy sum / W = [0.65, -0.3, 0.375]
    const { source, calls } = patternNoise([1, -1, 0.5]);
    const dp = createDpFedAvgAggregator(3, { clippingNorm: 1, noiseMultiplier: 2, expectedSilos: 4 }, source);
    const trace1 = dp.add(f32(3, 4, 0), 100);
    const trace2 = dp.add(f32(0, 0, 0.5), 1);
    const out = dp.finish();
    expect(calls).toHaveLength(1);
    [0.6, 0.8, 0.5].forEach((e, i) => expect(calls[0]![0][i]).toBeCloseTo(e, 6));
    expect(calls[0]!.slice(1)).toEqual([1, 2]);
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
      {
        step: 'noise',
        mechanism: 'discrete-gaussian-lattice',
        noiseMultiplier: 2,
        clippingNorm: 1,
        denominator: 4,
        stddev: 0.5,
        granularity: 2 ** -30,
      },
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
            fixedNoise(() => new Float64Array(update.length)),
          );
          const [, clip] = dp.add(update, 7);
          const { update: seen, weight } = inner.received[0]!;
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
    const dp = createDpFedAvgAggregator(
      2,
      { clippingNorm: 1, noiseMultiplier: 0, expectedSilos: 2 },
      fixedNoise(() => new Float64Array(2)),
    );
    dp.add(f32(0.5, 0), 1);
    expect(codeOf(() => dp.add(f32(1, Number.NaN), 1))).toBe(AggregationErrorCode.NonFiniteValue);
    expect(codeOf(() => dp.add(f32(1), 1))).toBe(AggregationErrorCode.LengthMismatch);
    expect(codeOf(() => dp.add(f32(1, 1), 0))).toBe(AggregationErrorCode.InvalidWeight);
    expect(dp.count).toBe(1);
    expect(Array.from(dp.finish().delta)).toEqual([0.25, 0]);
  });

  it('refuses a mechanism that returns the wrong length, non-finite values, float32, or less noise than z·S', () => {
    const options = { clippingNorm: 1, noiseMultiplier: 1, expectedSilos: 1 };
    for (const mechanism of [
      fixedNoise(() => new Float64Array(2)),
      fixedNoise(() => Float64Array.of(0, Number.NaN, 0)),
      fixedNoise(() => new Float32Array(3) as unknown as Float64Array),
      fixedNoise(() => new Float64Array(3), 0.999),
    ]) {
      const dp = createDpFedAvgAggregator(3, options, mechanism);
      dp.add(f32(0, 0, 0), 1);
      expect(codeOf(() => dp.finish())).toBe(AggregationErrorCode.NoiseSourceInvalid);
    }
  });

  it("with @tessera/dp's latticeNoisySum: the noisy sum lies on the lattice and carries σ·(S + γ√m) noise", () => {
    const m = 5000;
    const options = { clippingNorm: 0.8, noiseMultiplier: 1.5, expectedSilos: 4 };
    const rng = new SeededRandomSource('dp-fedavg');
    const dp = createDpFedAvgAggregator(m, options, (sum, parameters) => latticeNoisySum(sum, parameters, rng));
    const updates = [0, 1, 2].map((k) => Float32Array.from({ length: m }, (_, i) => Math.sin(i * (k + 1)) * 0.01));
    for (const u of updates) dp.add(u, 1);
    const out = dp.finish();
    const plan = latticeNoisePlan({ clipNorm: 0.8, noiseMultiplier: 1.5, dimension: m });
    expect(out.trace[1]).toMatchObject({ granularity: plan.granularity, stddev: plan.effectiveStddev / 4 });
    expect(plan.effectiveStddev).toBeGreaterThanOrEqual(1.5 * (0.8 + plan.granularity * Math.sqrt(m)));
    let squares = 0;
    for (let i = 0; i < m; i += 1) {
      const e = out.delta[i]! - (updates[0]![i]! + updates[1]![i]! + updates[2]![i]!) / 4;
      squares += e * e;
    }
    // Empirical stddev of the mean's noise vs σ_L·γ/W, within 5 standard errors.
    expect(Math.abs(squares / m / (plan.effectiveStddev / 4) ** 2 - 1)).toBeLessThan(5 * Math.sqrt(2 / m));
  });

  it('validates its parameters', () => {
    const noise = fixedNoise(() => new Float64Array(2));
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
