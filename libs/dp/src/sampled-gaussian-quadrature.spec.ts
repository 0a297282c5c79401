import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { logBinomialRemainder, logASampledGaussianQuadrature } from './sampled-gaussian-quadrature';
import { rdpSampledGaussianStep } from './rdp-accountant';

describe('logBinomialRemainder', () => {
  it('equals log((1+x)^alpha - 1 - alpha x) where that is well conditioned', () => {
    for (const [x, alpha] of [
      [0.5, 2.5],
      [3, 1.7],
      [-0.4, 7.3],
      [0.05, 2],
    ] as const) {
      const direct = Math.log((1 + x) ** alpha - 1 - alpha * x);
      expect(Math.abs(logBinomialRemainder(x, alpha) - direct)).toBeLessThan(1e-12 * Math.max(1, Math.abs(direct)));
    }
  });

  it('is C(alpha, 2) x^2 to leading order for tiny x (no cancellation)', () => {
    expect(logBinomialRemainder(1e-9, 1.5)).toBeCloseTo(Math.log(0.375 * 1e-18), 9);
  });
});

describe('quadrature of A_alpha', () => {
  // mpmath references from reference/rdp_reference.py (60 digits): one-step RDP = log A / (alpha - 1).
  it.each([
    [0.01, 2.5, 1.5, 1.3001417943760795e-5],
    [1e-4, 1, 1.5, 1.2885373907673299e-8],
    [0.1, 100, 20.5, 1.0252214593881177e-5],
    [0.04, 1.5, 3.9, 0.0018332021995838587],
    [0.5, 0.7, 7.3, 6.6458120707611945],
  ])('matches mpmath at q = %d, sigma = %d, order = %d', (q, sigma, order, expected) => {
    const rdp = logASampledGaussianQuadrature(q, sigma, order) / (order - 1);
    expect(Math.abs(rdp - expected) / expected).toBeLessThan(1e-9);
  });

  it('agrees with the series (integer orders: exact binomial sum) to 1e-9 relative', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 1e-4, max: 0.9, noNaN: true }),
        fc.double({ min: 0.5, max: 50, noNaN: true }),
        fc.integer({ min: 2, max: 64 }),
        (q, sigma, order) => {
          const series = rdpSampledGaussianStep(q, sigma, order, 'exact-integral');
          const quadrature = logASampledGaussianQuadrature(q, sigma, order) / (order - 1);
          expect(Math.abs(quadrature - series)).toBeLessThanOrEqual(1e-9 * series);
        },
      ),
      { numRuns: 60 },
    );
  });
});
