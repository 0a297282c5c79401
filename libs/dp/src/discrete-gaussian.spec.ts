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
import { expectChiSquareFit, expectFrequency, histogram, normalisedPmf } from './distribution.test-util';
import { SeededRandomSource, uniformInt } from './random-source';

// Fixed seeds and 1e-6-level bounds: see distribution.test-util.ts.

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
    const n = 120_000;
    const counts = histogram(n, () => uniformInt(rng, 6));
    expectChiSquareFit(counts, (x) => (x >= 0 && x < 6 ? 1 / 6 : 0), n);
    expect([...counts.keys()].sort()).toEqual([0, 1, 2, 3, 4, 5]);
  });
});

describe('discrete Laplace (CKS20 Algorithm 2)', () => {
  it('t = 3 matches the pmf proportional to exp(-|x| / 3)', () => {
    const rng = new SeededRandomSource('laplace');
    const n = 100_000;
    const counts = histogram(n, () => sampleDiscreteLaplace(rng, 3));
    expectChiSquareFit(
      counts,
      normalisedPmf((x) => Math.exp(-Math.abs(x) / 3), 200),
      n,
    );
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
    let sumSquares = 0;
    const counts = histogram(n, () => {
      const x = sampler.sample();
      expect(Number.isInteger(x)).toBe(true);
      sumSquares += x * x;
      return x;
    });
    const pmf = normalisedPmf((x) => Math.exp(-(x * x) / (2 * sigma2)), 200);
    expectChiSquareFit(counts, pmf, n);
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
