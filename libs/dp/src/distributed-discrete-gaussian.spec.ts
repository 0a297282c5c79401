import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  distributedDiscreteGaussianEpsilon,
  distributedDiscreteGaussianTau,
  distributedNoiseMaxScale,
  distributedNoisePlan,
  distributedNoiseTailFactor,
} from './distributed-discrete-gaussian';
import { latticeIntegers } from './lattice-noise';
import { PrivacyParameterError } from './privacy-parameter.exception';
import { SeededRandomSource } from './random-source';

// Reference values: Kairouz, Liu, Steinke 2021 (ICML), Theorem 1, evaluated at 40 significant digits with mpmath 1.3
// (τ = 10·Σ_{k=1}^{n−1} exp(−2π²σ²k/(k+1)), ε = sqrt(Δ²/(nσ²) + τd/2)), and the exact Rényi divergences of sums of
// discrete Gaussians by convolution of their mass functions in mpmath.

/** N_Z(0, σ²) mass on [−K, K] (normalised there; the mass outside is below 1e-190 for the σ used). */
function discreteGaussianPmf(sigma: number, support: number): number[] {
  const w = Array.from({ length: 2 * support + 1 }, (_, i) => Math.exp(-((i - support) ** 2) / (2 * sigma * sigma)));
  const total = w.reduce((a, b) => a + b, 0);
  return w.map((v) => v / total);
}

function convolve(a: readonly number[], b: readonly number[]): number[] {
  const out = new Array<number>(a.length + b.length - 1).fill(0);
  for (let i = 0; i < a.length; i++) for (let j = 0; j < b.length; j++) out[i + j]! += a[i]! * b[j]!;
  return out;
}

/** D_α(Z ‖ Z + Δ) for Z the sum of n independent N_Z(0, σ²), one coordinate, by exact convolution. */
function renyiOfSum(sigma: number, shares: number, shift: number, alpha: number): number {
  const p = discreteGaussianPmf(sigma, 30);
  let q = p;
  for (let k = 1; k < shares; k++) q = convolve(q, p);
  let total = 0;
  for (let x = 0; x < q.length; x++) {
    const y = x - shift;
    if (y < 0 || y >= q.length || q[x] === 0 || q[y] === 0) continue;
    total += Math.exp(alpha * Math.log(q[x]!) + (1 - alpha) * Math.log(q[y]!)); // in logs: no 0·∞
  }
  return Math.log(total) / (alpha - 1);
}

describe('distributedDiscreteGaussianTau and Epsilon (KLS21 Theorem 1)', () => {
  it('match the theorem evaluated independently at known points', () => {
    expect(distributedDiscreteGaussianTau(0.5, 2)).toBeCloseTo(0.8480497247111378, 14);
    expect(distributedDiscreteGaussianTau(1, 3)).toBeCloseTo(0.0005365032810126545, 17);
    expect(distributedDiscreteGaussianTau(0.75, 4)).toBeCloseTo(0.04732726965877181, 15);
    expect(distributedDiscreteGaussianTau(5, 1)).toBe(0); // one share is a discrete Gaussian itself
    expect(distributedDiscreteGaussianEpsilon({ sensitivity: 1, sigma: 1, shares: 2, dimension: 1 })).toBeCloseTo(
      0.7072896266247788,
      14,
    );
    expect(distributedDiscreteGaussianEpsilon({ sensitivity: 3, sigma: 0.75, shares: 4, dimension: 10 })).toBeCloseTo(
      2.058309099307939,
      13,
    );
  });

  it('bounds the exact Rényi divergence of a sum of discrete Gaussians (convolution), at the published values', () => {
    const cases = [
      // σ, n shares, Δ, α, exact D_α from mpmath
      { sigma: 1, shares: 2, shift: 1, alpha: 2, exact: 0.5 },
      { sigma: 0.75, shares: 3, shift: 2, alpha: 3, exact: 3.555382665589094 },
    ];
    for (const c of cases) {
      const divergence = renyiOfSum(c.sigma, c.shares, c.shift, c.alpha);
      expect(divergence).toBeCloseTo(c.exact, 9);
      const epsilon = distributedDiscreteGaussianEpsilon({
        sensitivity: c.shift,
        sigma: c.sigma,
        shares: c.shares,
        dimension: 1,
      });
      expect(divergence).toBeLessThanOrEqual((c.alpha * epsilon * epsilon) / 2);
    }
  });

  it('refuses σ below 1/2 (outside the theorem) and non-integer share counts', () => {
    expect(() => distributedDiscreteGaussianEpsilon({ sensitivity: 1, sigma: 0.4, shares: 2, dimension: 1 })).toThrow(
      PrivacyParameterError,
    );
    expect(() => distributedDiscreteGaussianTau(1, 2.5)).toThrow(PrivacyParameterError);
  });
});

describe('distributedNoisePlan', () => {
  it('sizes each share so t shares are at least as private as the accounted Gaussian: ε ≤ 1/z, σ minimal to 16', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.01, max: 100, noNaN: true }),
        fc.double({ min: 1, max: 2 ** 24, noNaN: true }),
        fc.integer({ min: 1, max: 5_000_000 }),
        fc.integer({ min: 2, max: 64 }),
        fc.double({ min: 0.3, max: 30, noNaN: true }),
        (clipNorm, steps, dimension, shares, noiseMultiplier) => {
          const scale = steps / clipNorm;
          const plan = distributedNoisePlan({ clipNorm, scale, dimension, shares, noiseMultiplier });
          expect(plan.sensitivity).toBeCloseTo(clipNorm * scale + Math.sqrt(dimension), 6);
          expect(plan.siloSigma % 16).toBe(0);
          expect(plan.epsilon).toBeLessThanOrEqual(1 / noiseMultiplier);
          // t shares of stddev σ carry at least the accounted noise z·C in the update's units.
          expect(plan.effectiveStddev).toBeGreaterThanOrEqual(noiseMultiplier * clipNorm);
          if (plan.siloSigma > 16) {
            const smaller = distributedDiscreteGaussianEpsilon({
              sensitivity: plan.sensitivity,
              sigma: plan.siloSigma - 16,
              shares,
              dimension,
            });
            expect(smaller).toBeGreaterThan(1 / noiseMultiplier);
          }
        },
      ),
    );
  });

  it('divides the variance among the t shares: t·σ² is the one-party σ_total² (to the rounding up to 16)', () => {
    const one = distributedNoisePlan({ clipNorm: 1, scale: 2 ** 20, dimension: 100, shares: 1, noiseMultiplier: 2 });
    const four = distributedNoisePlan({ clipNorm: 1, scale: 2 ** 20, dimension: 100, shares: 4, noiseMultiplier: 2 });
    expect(Math.abs(2 * four.siloSigma - one.siloSigma)).toBeLessThanOrEqual(32);
    expect(four.tau).toBe(0);
  });

  it('summed shares have the variance t·σ² (statistical test, 5 standard errors)', () => {
    const shares = 3;
    const plan = distributedNoisePlan({ clipNorm: 1, scale: 100, dimension: 40_000, shares, noiseMultiplier: 0.5 });
    const rng = new SeededRandomSource('distributed shares');
    const sum = new Float64Array(plan.dimension);
    for (let s = 0; s < shares; s++) {
      const share = latticeIntegers(plan.dimension, plan.siloSigma, rng);
      for (let i = 0; i < sum.length; i++) sum[i]! += share[i]!;
    }
    let mean = 0;
    for (const v of sum) mean += v;
    mean /= sum.length;
    let variance = 0;
    for (const v of sum) variance += (v - mean) ** 2;
    variance /= sum.length - 1;
    const expected = shares * plan.siloSigma ** 2; // Var N_Z(0, σ²) = σ² up to e^(−2π²σ²) at σ ≥ 16
    expect(Math.abs(mean)).toBeLessThan(5 * Math.sqrt(expected / sum.length));
    expect(Math.abs(variance / expected - 1)).toBeLessThan(5 * Math.sqrt(2 / sum.length));
  });
});

describe('distributedNoiseMaxScale', () => {
  it('is the largest scale whose n clipped inputs plus the tail of n shares fit the centred range of 2^k', () => {
    for (const [n, t, k, z, d] of [
      [4, 3, 32, 1.2, 28],
      [16, 9, 32, 5, 1_000_000],
      [64, 33, 32, 0.8, 10_000],
      [5, 3, 24, 2, 1000],
    ] as const) {
      const scale = distributedNoiseMaxScale({
        participantCount: n,
        clipNorm: 0.5,
        modulusBits: k,
        dimension: d,
        shares: t,
        noiseMultiplier: z,
      });
      expect(scale).toBeGreaterThan(0);
      const limit = 2 ** (k - 1) - 1;
      const margin = distributedNoiseTailFactor(d) * Math.sqrt(n);
      const used = (s: number) =>
        n * Math.ceil(0.5 * s) +
        margin *
          distributedNoisePlan({ clipNorm: 0.5, scale: s, dimension: d, shares: t, noiseMultiplier: z }).siloSigma;
      expect(used(scale)).toBeLessThanOrEqual(limit);
      expect(used(scale * 1.001)).toBeGreaterThan(limit); // within 0.1% of the largest
    }
  });

  it('is 0 when nothing fits (too few modulus bits for the noise)', () => {
    expect(
      distributedNoiseMaxScale({
        participantCount: 16,
        clipNorm: 1,
        modulusBits: 8,
        dimension: 1_000_000,
        shares: 9,
        noiseMultiplier: 5,
      }),
    ).toBe(0);
  });
});
