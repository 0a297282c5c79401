import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { latticeIntegers, latticeNoise, latticeNoisePlan, latticeNoisySum } from './lattice-noise';
import { PrivacyParameterError, PrivacyParameterErrorCode } from './privacy-parameter.exception';
import { SeededRandomSource } from './random-source';

// Fixed seeds make the statistical checks deterministic; their bounds are still 5 standard errors.

/** A finite double as an exact fraction num/den (den a power of two), from its IEEE-754 bits. */
function exactFraction(x: number): { num: bigint; den: bigint } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const sign = bits >> 63n === 1n ? -1n : 1n;
  const exponent = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  const mantissa = exponent === 0 ? fraction : fraction | (1n << 52n);
  const power = (exponent === 0 ? 1 : exponent) - 1075; // x = mantissa · 2^power
  return power >= 0
    ? { num: sign * mantissa * (1n << BigInt(power)), den: 1n }
    : { num: sign * mantissa, den: 1n << BigInt(-power) };
}

/** Exactly: s ≥ σ·(C/γ + √d), i.e. N = s/σ − C/γ ≥ 0 and N² ≥ d, in integers. */
function latticeSigmaCoversSensitivity(s: number, sigma: number, clipNorm: number, gamma: number, d: number): boolean {
  const sg = exactFraction(sigma);
  const cg = exactFraction(clipNorm / gamma); // exact: γ is a power of two
  expect(clipNorm / gamma).toBe(clipNorm * (1 / gamma));
  // s/σ − a/b = (s·den_σ·b − a·num_σ) / (num_σ·b)
  const numerator = BigInt(s) * sg.den * cg.den - cg.num * sg.num;
  const denominator = sg.num * cg.den;
  return numerator >= 0n && numerator * numerator >= BigInt(d) * denominator * denominator;
}

describe('latticeNoisePlan', () => {
  it('picks γ a power of two with σC/γ in [2^24, 2^25), and σ_L ≥ σ(C/γ + √d) exactly, at most 32 units above', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 1e-3, max: 1e3, noNaN: true }),
        fc.double({ min: 0.05, max: 50, noNaN: true }),
        fc.integer({ min: 1, max: 50_000_000 }),
        (clipNorm, sigma, d) => {
          const plan = latticeNoisePlan({ clipNorm, noiseMultiplier: sigma, dimension: d });
          const gamma = plan.granularity;
          expect(Number.isInteger(Math.log2(gamma))).toBe(true);
          expect((sigma * clipNorm) / gamma).toBeGreaterThanOrEqual(2 ** 24);
          expect((sigma * clipNorm) / gamma).toBeLessThan(2 ** 25);
          expect(plan.latticeSigma % 16).toBe(0);
          expect(latticeSigmaCoversSensitivity(plan.latticeSigma, sigma, clipNorm, gamma, d)).toBe(true);
          // Tight: rounding up to the sampler's 16-unit blocks, plus one block when the value is exactly on one.
          expect(plan.latticeSigma).toBeLessThan(sigma * (clipNorm / gamma + Math.sqrt(d)) + 33);
          expect(plan.sensitivity).toBe(clipNorm + gamma * Math.sqrt(d));
          expect(plan.effectiveStddev).toBe(plan.latticeSigma * gamma);
          expect(plan.effectiveStddev).toBeGreaterThanOrEqual(sigma * plan.sensitivity);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('inflates the noise by γ√d only: the known values at σ = C = 1', () => {
    // γ = 2^-24; σ_L = 2^24 + √d, rounded up to a multiple of 16.
    expect(latticeNoisePlan({ clipNorm: 1, noiseMultiplier: 1, dimension: 1 })).toMatchObject({
      granularity: 2 ** -24,
      latticeSigma: 2 ** 24 + 16,
      sensitivity: 1 + 2 ** -24,
    });
    const mlp = latticeNoisePlan({ clipNorm: 1, noiseMultiplier: 1, dimension: 203_530 });
    expect(mlp.latticeSigma).toBe(2 ** 24 + 464); // √203530 = 451.1, next multiple of 16
    // The price of the lattice for the benchmark MLP: 2.8e-5 more noise than σC.
    expect(mlp.effectiveStddev / 1 - 1).toBeLessThan(3e-5);
    expect(latticeNoisePlan({ clipNorm: 3, noiseMultiplier: 0.5, dimension: 14 }).granularity).toBe(2 ** -24);
  });

  it('refuses σ = 0, bad C or d, bad granularity, and a lattice sigma beyond the exact sampler', () => {
    const code = (f: () => unknown): string | undefined => {
      try {
        f();
        return undefined;
      } catch (error) {
        expect(error).toBeInstanceOf(PrivacyParameterError);
        return (error as PrivacyParameterError).code;
      }
    };
    const ok = { clipNorm: 1, noiseMultiplier: 1, dimension: 10 };
    expect(code(() => latticeNoisePlan({ ...ok, noiseMultiplier: 0 }))).toBe(
      PrivacyParameterErrorCode.InvalidNoiseMultiplier,
    );
    expect(code(() => latticeNoisePlan({ ...ok, noiseMultiplier: Number.NaN }))).toBe(
      PrivacyParameterErrorCode.InvalidNoiseMultiplier,
    );
    expect(code(() => latticeNoisePlan({ ...ok, clipNorm: -1 }))).toBe(PrivacyParameterErrorCode.InvalidClipNorm);
    expect(code(() => latticeNoisePlan({ ...ok, clipNorm: Infinity }))).toBe(PrivacyParameterErrorCode.InvalidClipNorm);
    expect(code(() => latticeNoisePlan({ ...ok, dimension: 0 }))).toBe(PrivacyParameterErrorCode.InvalidOption);
    expect(code(() => latticeNoisePlan({ ...ok, dimension: 2.5 }))).toBe(PrivacyParameterErrorCode.InvalidOption);
    expect(code(() => latticeNoisePlan({ ...ok, granularityBits: 31 }))).toBe(PrivacyParameterErrorCode.InvalidOption);
    // 1.99·2^30 + 1.99·10^7 lattice units exceed 2^31.
    expect(
      code(() => latticeNoisePlan({ clipNorm: 1, noiseMultiplier: 1.99, dimension: 1e14, granularityBits: 30 })),
    ).toBe(PrivacyParameterErrorCode.InvalidOption);
  });
});

describe('latticeNoise', () => {
  const plan = latticeNoisePlan({ clipNorm: 0.5, noiseMultiplier: 1.3, dimension: 1000 });
  const gamma = plan.granularity;

  it('releases round(s/γ) + z on the lattice γZ, exactly, for float32 and float64 sums', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -1e4, max: 1e4, noNaN: true }), { minLength: 1000, maxLength: 1000 }),
        fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 }), { minLength: 1000, maxLength: 1000 }),
        (values, integers) => {
          const noise = Float64Array.from(integers);
          for (const sums of [Float64Array.from(values), Float32Array.from(values)]) {
            const out = latticeNoise(sums, plan, noise);
            let worst = 0;
            for (let i = 0; i < out.length; i++) {
              const units = out[i]! / gamma;
              // On the lattice, and the lattice point is round(s/γ) + z (ties may go either way: |k − s/γ| ≤ 1/2).
              if (!Number.isSafeInteger(units)) throw new Error(`out[${i}] = ${out[i]} is not on γZ`);
              const k = units - integers[i]!;
              if (!Number.isSafeInteger(k)) throw new Error(`k[${i}] is not an integer`);
              worst = Math.max(worst, Math.abs(k - sums[i]! / gamma));
            }
            expect(worst).toBeLessThanOrEqual(0.5);
          }
        },
      ),
      { numRuns: 20 },
    );
  });

  it('forgets the bits of the sum below γ: s and s + γ/8 give bit-identical releases', () => {
    const sums = Float64Array.from({ length: 1000 }, (_, i) => (i - 500) * 0.37 * gamma * 1e6);
    const nudged = sums.map((s) => s + gamma / 8);
    const noise = latticeIntegers(1000, plan.latticeSigma, new SeededRandomSource('bits'));
    expect(latticeNoise(nudged, plan, noise)).toEqual(latticeNoise(sums, plan, noise));
  });

  it('needs the γ√d term: rounding alone can move nearly equal sums γ√d apart', () => {
    // Sums just below and just above the half-lattice point: ||s − s'|| ≈ 0, rounded apart by exactly γ in every
    // coordinate, so the rounded sum's sensitivity is C + γ√d and not C.
    const d = plan.dimension;
    const below = new Float64Array(d).fill(gamma * (0.5 - 2 ** -20));
    const above = new Float64Array(d).fill(gamma * (0.5 + 2 ** -20));
    const zero = new Float64Array(d);
    const a = latticeNoise(below, plan, zero);
    const b = latticeNoise(above, plan, zero);
    const inputDistance = Math.hypot(...above.map((v, i) => v - below[i]!));
    const outputDistance = Math.hypot(...b.map((v, i) => v - a[i]!));
    expect(inputDistance).toBeLessThan(1e-3 * gamma);
    expect(outputDistance).toBe(gamma * Math.sqrt(d));
    expect(plan.sensitivity).toBeGreaterThanOrEqual(plan.clipNorm + outputDistance);
  });

  it('adds noise of stddev σ_L·γ ≥ σ(C + γ√d) (200k coordinates)', () => {
    const big = latticeNoisePlan({ clipNorm: 0.7, noiseMultiplier: 1.1, dimension: 200_000 });
    const sums = Float32Array.from({ length: big.dimension }, (_, i) => Math.sin(i) * 3);
    const { sum: released, plan: used } = latticeNoisySum(
      sums,
      { clipNorm: 0.7, noiseMultiplier: 1.1 },
      new SeededRandomSource('stddev'),
    );
    expect(used).toEqual(big);
    let total = 0;
    let squares = 0;
    for (let i = 0; i < released.length; i++) {
      const e = released[i]! - sums[i]!;
      total += e;
      squares += e * e;
    }
    const n = released.length;
    const s = big.effectiveStddev;
    expect(Math.abs(total / n)).toBeLessThan((5 * s) / Math.sqrt(n));
    // Variance of the noise plus the rounding (uniform, γ²/12: negligible next to s² but included).
    expect(Math.abs(squares / n / (s * s + big.granularity ** 2 / 12) - 1)).toBeLessThan(5 * Math.sqrt(2 / n));
    expect(s).toBeGreaterThanOrEqual(1.1 * (0.7 + big.granularity * Math.sqrt(n)));
  });

  it('fails closed: non-finite or too large sums, non-integer or huge noise, wrong lengths', () => {
    const zero = new Float64Array(plan.dimension);
    const withValue = (v: number): Float64Array => {
      const a = new Float64Array(plan.dimension);
      a[7] = v;
      return a;
    };
    const code = (f: () => unknown): string | undefined => {
      try {
        f();
        return undefined;
      } catch (error) {
        expect(error).toBeInstanceOf(PrivacyParameterError);
        return (error as PrivacyParameterError).code;
      }
    };
    expect(code(() => latticeNoise(withValue(Number.NaN), plan, zero))).toBe(PrivacyParameterErrorCode.NonFiniteValue);
    expect(code(() => latticeNoise(withValue(-Infinity), plan, zero))).toBe(PrivacyParameterErrorCode.NonFiniteValue);
    // 2^51 lattice units: the rounding and k + z would no longer be guaranteed exact.
    expect(code(() => latticeNoise(withValue(2 ** 51 * gamma), plan, zero))).toBe(
      PrivacyParameterErrorCode.NonFiniteValue,
    );
    expect(code(() => latticeNoise(withValue(-(2 ** 51) * gamma), plan, zero))).toBe(
      PrivacyParameterErrorCode.NonFiniteValue,
    );
    const edge = latticeNoise(withValue((2 ** 51 - 1) * gamma), plan, withValue(2 ** 52 - 1));
    expect(edge[7]! / gamma).toBe(2 ** 51 + 2 ** 52 - 2); // exact, below 2^53
    expect(code(() => latticeNoise(zero, plan, withValue(0.5)))).toBe(PrivacyParameterErrorCode.InvalidOption);
    expect(code(() => latticeNoise(zero, plan, withValue(2 ** 52)))).toBe(PrivacyParameterErrorCode.InvalidOption);
    expect(code(() => latticeNoise(zero, plan, withValue(Number.NaN)))).toBe(PrivacyParameterErrorCode.InvalidOption);
    expect(code(() => latticeNoise(zero.subarray(1), plan, zero))).toBe(PrivacyParameterErrorCode.InvalidOption);
    expect(code(() => latticeNoise(zero, plan, zero.subarray(1)))).toBe(PrivacyParameterErrorCode.InvalidOption);
    expect(code(() => latticeNoise(zero, plan, new Float32Array(plan.dimension) as unknown as Float64Array))).toBe(
      PrivacyParameterErrorCode.InvalidOption,
    );
  });
});

describe('latticeIntegers', () => {
  it('draws integers with variance s² and validates s', () => {
    const s = 2 ** 24 + 464;
    const n = 100_000;
    const z = latticeIntegers(n, s, new SeededRandomSource('integers'));
    let squares = 0;
    for (const v of z) {
      if (!Number.isInteger(v)) throw new Error(`not an integer: ${v}`);
      squares += v * v;
    }
    expect(Math.abs(squares / n / (s * s) - 1)).toBeLessThan(5 * Math.sqrt(2 / n));
    expect(() => latticeIntegers(10, 1.5)).toThrow(PrivacyParameterError);
    expect(() => latticeIntegers(10, 0)).toThrow(PrivacyParameterError);
    expect(() => latticeIntegers(10, 2 ** 31 + 1)).toThrow(PrivacyParameterError);
    expect(() => latticeIntegers(-1, 16)).toThrow(PrivacyParameterError);
  });
});
