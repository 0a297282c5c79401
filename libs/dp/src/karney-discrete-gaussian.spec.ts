import { describe, expect, it } from 'vitest';

import { DiscreteGaussianSampler } from './discrete-gaussian';
import { expectChiSquareFit, expectFrequency, histogram, normalisedPmf } from './distribution.test-util';
import { KarneyDiscreteGaussianSampler, MAX_KARNEY_SIGMA } from './karney-discrete-gaussian';
import { PrivacyParameterError, PrivacyParameterErrorCode } from './privacy-parameter.exception';
import { type RandomSource, SeededRandomSource } from './random-source';

// Fixed seeds and 1e-6-level bounds: see distribution.test-util.ts.

/** The exact pmf of N_Z(0, s^2), normalised over +-(12 s + 10) (the rest weighs < e^-72). */
function discreteGaussianPmf(s: number): (x: number) => number {
  return normalisedPmf((x) => Math.exp(-(x * x) / (2 * s * s)), 12 * s + 10);
}

/** Chi-square against the exact pmf (bins of ~s/5) and the exact variance, on n draws. */
function expectDiscreteGaussian(s: number, n: number, draw: () => number): void {
  let sumSquares = 0;
  const counts = histogram(n, () => {
    const x = draw();
    sumSquares += x * x;
    return x;
  });
  for (const x of counts.keys()) expect(Number.isSafeInteger(x)).toBe(true);
  const pmf = discreteGaussianPmf(s);
  expectChiSquareFit(counts, pmf, n, Math.max(1, Math.ceil(s / 5)));
  let variance = 0;
  let fourth = 0;
  for (let x = -12 * s - 10; x <= 12 * s + 10; x++) {
    variance += x * x * pmf(x);
    fourth += x ** 4 * pmf(x);
  }
  expect(Math.abs(sumSquares / n - variance)).toBeLessThan(5 * Math.sqrt((fourth - variance * variance) / n));
}

describe('KarneyDiscreteGaussianSampler: exact N_Z(0, s^2) for integer s', () => {
  // s picks the code paths: m = blocks per sigma (largest power of two <= 16 dividing s), w = s / m the block width.
  // w = 1 never runs the fraction test; w = 2 or 3 makes digit ties (and the tie-breaking words) frequent; m = 16 is
  // the production shape; s = 3 is Karney's original single block.
  it.each([
    [1, 'm = 1, w = 1'],
    [2, 'm = 2, w = 1'],
    [3, 'm = 1, w = 3'],
    [6, 'm = 2, w = 3'],
    [10, 'm = 2, w = 5'],
    [32, 'm = 16, w = 2'],
    [48, 'm = 16, w = 3'],
    [100, 'm = 4, w = 25'],
    [1600, 'm = 16, w = 100'],
  ])('s = %d (%s) matches the exact pmf (chi-square on 200k draws) and its variance, one by one and in bulk', (s) => {
    const sampler = new KarneyDiscreteGaussianSampler(s, new SeededRandomSource(`karney-${s}`));
    const n = 200_000;
    expectDiscreteGaussian(s, n, () => sampler.sample());
    // fill() inlines the common path and falls back to the same methods: check it on its own draws.
    const bulk = new Float64Array(n);
    new KarneyDiscreteGaussianSampler(s, new SeededRandomSource(`karney-fill-${s}`)).fill(bulk);
    let next = 0;
    expectDiscreteGaussian(s, n, () => bulk[next++]!);
  });

  it('agrees with the CKS20 sampler on the same sigma (two-sample chi-square on |x| bins)', () => {
    const s = 48;
    const n = 100_000;
    const karney = new KarneyDiscreteGaussianSampler(s, new SeededRandomSource('cross-karney'));
    const cks = new DiscreteGaussianSampler(
      { numerator: BigInt(s * s), denominator: 1n },
      new SeededRandomSource('cks'),
    );
    const bin = (x: number): number => Math.min(Math.floor(Math.abs(x) / 12), 15);
    const a = new Array<number>(16).fill(0);
    const b = new Array<number>(16).fill(0);
    for (let i = 0; i < n; i++) {
      a[bin(karney.sample())]!++;
      b[bin(cks.sample())]!++;
    }
    // Two-sample chi-square, equal sizes: sum (a - b)^2 / (a + b), 15 df; scipy.stats.chi2.ppf(1 - 1e-6, 15) = 56.5.
    let statistic = 0;
    for (let i = 0; i < 16; i++) if (a[i]! + b[i]! > 0) statistic += (a[i]! - b[i]!) ** 2 / (a[i]! + b[i]!);
    expect(statistic).toBeLessThan(56.5);
  });

  it('at the production scale (s ~ 2^24) has the Gaussian moments, tails and uniform low-order bits', () => {
    const s = 2 ** 24 + 16 * 4099;
    const sampler = new KarneyDiscreteGaussianSampler(s, new SeededRandomSource('karney-large'));
    expect(sampler.blocks).toBe(16);
    const n = 200_000;
    let sum = 0;
    let sumSquares = 0;
    let beyondTwo = 0;
    const low = new Map<number, number>();
    const draws = new Float64Array(n);
    sampler.fill(draws); // the path gaussianNoise takes
    for (const x of draws) {
      sum += x / s;
      sumSquares += (x / s) ** 2;
      if (Math.abs(x) > 2 * s) beyondTwo++;
      const r = ((x % 16) + 16) % 16;
      low.set(r, (low.get(r) ?? 0) + 1);
    }
    expect(Math.abs(sum / n)).toBeLessThan(5 / Math.sqrt(n));
    expect(Math.abs(sumSquares / n - 1)).toBeLessThan(5 * Math.sqrt(2 / n));
    expectFrequency(beyondTwo, n, 0.04550026389635842); // P(|Z| > 2) = erfc(sqrt(2))
    // x mod 16 of a discrete Gaussian this wide is uniform to within e^-(2 pi^2 s^2 / 256): a lattice artefact shows.
    expectChiSquareFit(low, (r) => (r >= 0 && r < 16 ? 1 / 16 : 0), n);
  });

  it('is symmetric and puts the right mass on 0 (the "-0" proposal is rejected, not counted twice)', () => {
    const s = 2;
    const sampler = new KarneyDiscreteGaussianSampler(s, new SeededRandomSource('zero'));
    const n = 200_000;
    let zeros = 0;
    let positive = 0;
    for (let i = 0; i < n; i++) {
      const x = sampler.sample();
      if (x === 0) zeros++;
      else if (x > 0) positive++;
    }
    const p0 = discreteGaussianPmf(s)(0);
    expectFrequency(zeros, n, p0);
    expectFrequency(positive, n, (1 - p0) / 2);
  });

  it('reads words in bulk when the source can fill buffers, with the same stream semantics', () => {
    const stream = new SeededRandomSource('bulk');
    const bulk: RandomSource = {
      nextUint32: () => stream.nextUint32(),
      fillUint32: (out) => {
        for (let i = 0; i < out.length; i++) out[i] = stream.nextUint32();
      },
    };
    const plain = new SeededRandomSource('bulk');
    const a = new KarneyDiscreteGaussianSampler(160, bulk);
    const b = new KarneyDiscreteGaussianSampler(160, plain);
    const xs = new Float64Array(5000);
    const ys = new Float64Array(5000);
    a.fill(xs);
    b.fill(ys);
    expect(xs).toEqual(ys);
    const c = new KarneyDiscreteGaussianSampler(160, new SeededRandomSource('other'));
    expect(Array.from({ length: 50 }, () => c.sample())).not.toEqual(Array.from(xs.subarray(0, 50)));
  });

  it('refuses a sigma that is not an integer in [1, 2^31]', () => {
    for (const bad of [0, -3, 1.5, Number.NaN, MAX_KARNEY_SIGMA + 1]) {
      try {
        new KarneyDiscreteGaussianSampler(bad, new SeededRandomSource('bad'));
        expect.unreachable(`sigma ${bad} should be refused`);
      } catch (error) {
        expect(error).toBeInstanceOf(PrivacyParameterError);
        expect((error as PrivacyParameterError).code).toBe(PrivacyParameterErrorCode.InvalidStddev);
      }
    }
    expect(new KarneyDiscreteGaussianSampler(MAX_KARNEY_SIGMA, new SeededRandomSource('max')).blocks).toBe(16);
  });
});
