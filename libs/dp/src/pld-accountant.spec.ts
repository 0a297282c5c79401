import { describe, expect, it } from 'vitest';

import { logErfc } from './log-math.util';
import {
  composeLossDistribution,
  deltaOfLossDistribution,
  PLD_ACCOUNTANT_NAME,
  pldEpsilon,
  sampledGaussianLossDistribution,
} from './pld-accountant';
import { epsilonForNoise } from './privacy-calibration';
import { PrivacyParameterError, PrivacyParameterErrorCode } from './privacy-parameter.exception';

const normalCdf = (z: number): number => 0.5 * Math.exp(logErfc(-z / Math.SQRT2));

/**
 * The exact privacy profile of the Gaussian mechanism with sensitivity/sigma ratio mu (Balle, Wang 2018, Theorem 8):
 * delta(epsilon) = Phi(-epsilon/mu + mu/2) - e^epsilon Phi(-epsilon/mu - mu/2). T steps of noise multiplier s without
 * subsampling compose to mu = sqrt(T) / s.
 */
function gaussianDelta(mu: number, epsilon: number): number {
  return normalCdf(-epsilon / mu + mu / 2) - Math.exp(epsilon) * normalCdf(-epsilon / mu - mu / 2);
}
function gaussianEpsilon(mu: number, delta: number): number {
  let low = 0;
  let high = 200;
  for (let i = 0; i < 200; i++) {
    const mid = (low + high) / 2;
    if (gaussianDelta(mu, mid) <= delta) high = mid;
    else low = mid;
  }
  return high;
}

/**
 * One Poisson-subsampled Gaussian step, exactly: the privacy loss is monotone in the output x, so the hockey-stick
 * divergence is a difference of Gaussian tail masses at the crossing point.
 *   remove: delta = P(x > x*) - e^eps Q(x > x*), add: delta = Q(x < x') - e^eps P(x < x').
 */
function oneStepDelta(s: number, q: number, direction: 'add' | 'remove', epsilon: number): number {
  const tailAbove = (x: number, mean: number) => normalCdf(-(x - mean) / s);
  const tailBelow = (x: number, mean: number) => normalCdf((x - mean) / s);
  const massP = (tail: (x: number, mean: number) => number, x: number) => (1 - q) * tail(x, 0) + q * tail(x, 1);
  if (direction === 'remove') {
    const x = s * s * Math.log((Math.exp(epsilon) - (1 - q)) / q) + 0.5;
    return massP(tailAbove, x) - Math.exp(epsilon) * tailAbove(x, 0);
  }
  if (Math.exp(-epsilon) <= 1 - q) return 0;
  const x = s * s * Math.log((Math.exp(-epsilon) - (1 - q)) / q) + 0.5;
  return tailBelow(x, 0) - Math.exp(epsilon) * massP(tailBelow, x);
}

// Fine grids and FFT compositions: seconds of arithmetic per case on a shared two-core machine (not a speed check).
describe('PLD accountant of the Poisson-subsampled Gaussian', { timeout: 60_000 }, () => {
  it.each([
    [1, 1],
    [2, 100],
    [5, 1000],
  ])(
    'without subsampling (q = 1) matches the exact Gaussian profile from above: sigma %d, %d steps',
    (sigma, steps) => {
      const exact = gaussianEpsilon(Math.sqrt(steps) / sigma, 1e-5);
      const pld = pldEpsilon({ noiseMultiplier: sigma, samplingRate: 1, steps, delta: 1e-5 });
      expect(pld.accountant).toBe(PLD_ACCOUNTANT_NAME);
      expect(pld.epsilon).toBeGreaterThanOrEqual(exact - 1e-8);
      expect(pld.epsilon - exact).toBeLessThan(2e-4);
    },
  );

  it.each([
    [1.1, 0.01],
    [0.8, 0.2],
    [9.153, 0.1],
  ])('one step at sigma %d, q %d bounds the exact hockey-stick divergence from above, tightly', (sigma, q) => {
    for (const direction of ['remove', 'add'] as const) {
      const one = sampledGaussianLossDistribution(sigma, q, direction);
      const mass = one.masses.reduce((a, b) => a + b, one.infinity);
      expect(Math.abs(mass - 1)).toBeLessThan(1e-12);
      for (const epsilon of [0, 0.001, 0.01, 0.05, 0.2]) {
        const exact = oneStepDelta(sigma, q, direction, epsilon);
        const bound = deltaOfLossDistribution(one, epsilon);
        expect(bound, `${direction} at ε = ${epsilon}`).toBeGreaterThanOrEqual(exact - 1e-12);
        expect(bound - exact, `${direction} at ε = ${epsilon}`).toBeLessThan(1e-6 + 1e-4 * exact);
      }
    }
  });

  it.each([
    [1.1, 0.01, 1000],
    [9.153, 0.1, 500], // the demo's mechanism
    [1.0, 256 / 60_000, 14_063], // DP-SGD on MNIST: batch 256 of 60,000, 60 epochs
  ])('is tighter than the RDP accountant (sigma %d, q %d, %d steps), as it must be', (sigma, q, steps) => {
    const rdp = epsilonForNoise({ noiseMultiplier: sigma, samplingRate: q, steps, delta: 1e-5 }).epsilon;
    const pld = pldEpsilon({ noiseMultiplier: sigma, samplingRate: q, steps, delta: 1e-5 });
    expect(pld.epsilon).toBeLessThan(rdp);
    expect(pld.epsilon).toBeGreaterThan(0.75 * rdp); // and not absurdly so
    expect(pld.direction).toBe('remove');
  });

  it('converges as the grid gets finer, and grows with steps and sampling, shrinks with noise', () => {
    const base = { noiseMultiplier: 1.1, samplingRate: 0.01, steps: 1000, delta: 1e-5 };
    const coarse = pldEpsilon({ ...base, discretization: 2e-4 }).epsilon;
    const fine = pldEpsilon({ ...base, discretization: 5e-5 }).epsilon;
    expect(Math.abs(coarse - fine)).toBeLessThan(2e-3);
    const epsilon = pldEpsilon(base).epsilon;
    expect(pldEpsilon({ ...base, steps: 2000 }).epsilon).toBeGreaterThan(epsilon);
    expect(pldEpsilon({ ...base, samplingRate: 0.02 }).epsilon).toBeGreaterThan(epsilon);
    expect(pldEpsilon({ ...base, noiseMultiplier: 1.5 }).epsilon).toBeLessThan(epsilon);
    expect(pldEpsilon({ ...base, samplingRate: 0 }).epsilon).toBe(0);
  });

  it('keeps all the mass through composition, with the tails moved to +infinity', () => {
    const one = sampledGaussianLossDistribution(1.1, 0.01, 'remove');
    const composed = composeLossDistribution(one, 1000);
    const total = composed.masses.reduce((a, b) => a + b, composed.infinity);
    expect(Math.abs(total - 1)).toBeLessThan(1e-9);
    expect(composed.infinity).toBeLessThan(1e-12);
  });

  it('refuses bad parameters and grids it cannot afford, naming them', () => {
    const ok = { noiseMultiplier: 1, samplingRate: 0.01, steps: 100, delta: 1e-5 };
    const codeOf = (f: () => unknown): string | undefined => {
      try {
        f();
        return undefined;
      } catch (error) {
        expect(error).toBeInstanceOf(PrivacyParameterError);
        return (error as PrivacyParameterError).code;
      }
    };
    expect(codeOf(() => pldEpsilon({ ...ok, noiseMultiplier: 0 }))).toBe(
      PrivacyParameterErrorCode.InvalidNoiseMultiplier,
    );
    expect(codeOf(() => pldEpsilon({ ...ok, delta: 1 }))).toBe(PrivacyParameterErrorCode.InvalidDelta);
    expect(codeOf(() => pldEpsilon({ ...ok, discretization: 0 }))).toBe(PrivacyParameterErrorCode.InvalidOption);
    expect(codeOf(() => pldEpsilon({ ...ok, samplingRate: 1, steps: 100_000 }))).toBe(
      PrivacyParameterErrorCode.InvalidOption,
    );
  });
});
