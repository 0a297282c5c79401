import { describe, expect, it } from 'vitest';

import {
  bernoulliExpMinusOne,
  bernoulliExpMinusRational,
  bernoulliRational,
  bigintSqrtFloor,
  DiscreteGaussianSampler,
  sampleDiscreteLaplace,
} from './discrete-gaussian';
import { PrivacyParameterError } from './privacy-parameter.exception';
import { SeededRandomSource, uniformInt } from './random-source';

// Statistical tests draw from a fixed-seed SeededRandomSource, so they are deterministic and cannot flake. Their bounds
// are still set as if the draws were fresh: frequencies within 5 standard errors (a correct sampler fails such a check
// with probability < 1e-6), chi-square statistics below the 1 - 1e-6 quantile (scipy.stats.chi2.ppf).

function expectFrequency(hits: number, n: number, p: number): void {
  const standardError = Math.sqrt((p * (1 - p)) / n);
  expect(Math.abs(hits / n - p), `frequency ${hits / n} vs p ${p}`).toBeLessThan(5 * standardError);
}

/** Pearson chi-square of counts against a pmf over integer support [-range, range], outer bins merged into tails. */
function chiSquare(counts: Map<number, number>, pmf: (x: number) => number, range: number, n: number): number {
  let statistic = 0;
  let tailObserved = n;
  let tailExpected = 1;
  for (let x = -range; x <= range; x++) {
    const expected = n * pmf(x);
    const observed = counts.get(x) ?? 0;
    statistic += (observed - expected) ** 2 / expected;
    tailObserved -= observed;
    tailExpected -= pmf(x);
  }
  const expectedTail = n * tailExpected;
  if (expectedTail > 5) statistic += (tailObserved - expectedTail) ** 2 / expectedTail;
  return statistic;
}

function normalisedPmf(weight: (x: number) => number, support: number): (x: number) => number {
  let total = 0;
  for (let x = -support; x <= support; x++) total += weight(x);
  return (x) => weight(x) / total;
}

describe('exact Bernoulli coins', () => {
  it('bernoulliRational(1, 3) has frequency 1/3, and is exact at 0 and 1', () => {
    const rng = new SeededRandomSource('bernoulli-rational');
    let hits = 0;
    const n = 100_000;
    for (let i = 0; i < n; i++) if (bernoulliRational(rng, 1n, 3n)) hits++;
    expectFrequency(hits, n, 1 / 3);
    expect(bernoulliRational(rng, 0n, 7n)).toBe(false);
    expect(bernoulliRational(rng, 7n, 7n)).toBe(true);
  });

  it('bernoulliRational resolves probabilities closer than 2^-32 (multi-word expansion)', () => {
    // p = 1/2 + 2^-40: only a 2-word comparison can tell it apart from 1/2; frequency must still be ~1/2.
    const rng = new SeededRandomSource('bernoulli-fine');
    let hits = 0;
    const n = 50_000;
    for (let i = 0; i < n; i++) if (bernoulliRational(rng, (1n << 39n) + 1n, 1n << 40n)) hits++;
    expectFrequency(hits, n, 0.5);
  });

  it('Bernoulli(exp(-gamma)) matches exp(-gamma) for gamma = 1, 0.7 and 2.5 (CKS20 Algorithm 1)', () => {
    const rng = new SeededRandomSource('bernoulli-exp');
    const n = 100_000;
    let one = 0;
    let small = 0;
    let large = 0;
    for (let i = 0; i < n; i++) {
      if (bernoulliExpMinusOne(rng)) one++;
      if (bernoulliExpMinusRational(rng, 7n, 10n)) small++;
      if (bernoulliExpMinusRational(rng, 5n, 2n)) large++;
    }
    expectFrequency(one, n, Math.exp(-1));
    expectFrequency(small, n, Math.exp(-0.7));
    expectFrequency(large, n, Math.exp(-2.5));
  });

  it('uniformInt is unbiased for a bound that does not divide 2^32', () => {
    const rng = new SeededRandomSource('uniform');
    const counts = new Map<number, number>();
    const n = 120_000;
    for (let i = 0; i < n; i++) {
      const v = uniformInt(rng, 6);
      counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    // 6 cells, df = 5: chi2.ppf(1 - 1e-6, 5) = 35.9.
    const statistic = [...counts.values()].reduce((s, c) => s + (c - n / 6) ** 2 / (n / 6), 0);
    expect(statistic).toBeLessThan(35.9);
    expect([...counts.keys()].sort()).toEqual([0, 1, 2, 3, 4, 5]);
  });
});

describe('discrete Laplace (CKS20 Algorithm 2)', () => {
  it('t = 3 matches the pmf proportional to exp(-|x| / 3)', () => {
    const rng = new SeededRandomSource('laplace');
    const n = 100_000;
    const counts = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      const x = sampleDiscreteLaplace(rng, 3);
      counts.set(x, (counts.get(x) ?? 0) + 1);
    }
    const pmf = normalisedPmf((x) => Math.exp(-Math.abs(x) / 3), 200);
    // 25 cells + tail, df = 25: chi2.ppf(1 - 1e-6, 25) = 70.4.
    expect(chiSquare(counts, pmf, 12, n)).toBeLessThan(70.4);
  });
});

describe('discrete Gaussian (CKS20 Algorithm 3)', () => {
  it.each([
    [2n, 1n],
    [1n, 3n],
    [49n, 4n],
  ])('sigma^2 = %d/%d matches the exact pmf (chi-square) and the exact variance', (numerator, denominator) => {
    const sigma2 = Number(numerator) / Number(denominator);
    const sampler = new DiscreteGaussianSampler({ numerator, denominator }, new SeededRandomSource(`dg-${sigma2}`));
    const n = 100_000;
    const counts = new Map<number, number>();
    let sumSquares = 0;
    for (let i = 0; i < n; i++) {
      const x = sampler.sample();
      expect(Number.isInteger(x)).toBe(true);
      counts.set(x, (counts.get(x) ?? 0) + 1);
      sumSquares += x * x;
    }
    const pmf = normalisedPmf((x) => Math.exp(-(x * x) / (2 * sigma2)), 200);
    const range = Math.max(2, Math.ceil(3 * Math.sqrt(sigma2)));
    // At most 2 * 11 + 1 = 23 cells + tail: chi2.ppf(1 - 1e-6, 23) = 66.7.
    expect(chiSquare(counts, pmf, range, n)).toBeLessThan(66.7);
    let variance = 0;
    let fourth = 0;
    for (let x = -200; x <= 200; x++) {
      variance += x * x * pmf(x);
      fourth += x ** 4 * pmf(x);
    }
    const standardError = Math.sqrt((fourth - variance * variance) / n);
    expect(Math.abs(sumSquares / n - variance)).toBeLessThan(5 * standardError);
  });

  it('rejects a non-positive sigma^2 and sigma >= 2^40', () => {
    const rng = new SeededRandomSource('x');
    expect(() => new DiscreteGaussianSampler({ numerator: 0n, denominator: 1n }, rng)).toThrow(PrivacyParameterError);
    expect(() => new DiscreteGaussianSampler({ numerator: 1n << 82n, denominator: 1n }, rng)).toThrow(
      PrivacyParameterError,
    );
  });

  it('bigintSqrtFloor is exact around perfect squares', () => {
    for (const root of [0n, 1n, 2n, 12345n, (1n << 40n) + 3n]) {
      expect(bigintSqrtFloor(root * root)).toBe(root);
      if (root > 0n) expect(bigintSqrtFloor(root * root - 1n)).toBe(root - 1n);
      expect(bigintSqrtFloor(root * root + 2n * root)).toBe(root);
    }
  });
});
