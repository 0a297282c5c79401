import { describe, expect, it } from 'vitest';

import {
  betaQuantile,
  bestThresholdAudit,
  clopperPearson,
  empiricalEpsilonLowerBound,
  regularizedIncompleteBeta,
} from './empirical-audit';
import { logErfc } from './log-math.util';
import { epsilonForEvents } from './privacy-calibration';
import { PrivacyParameterError, PrivacyParameterErrorCode } from './privacy-parameter.exception';
import { SeededRandomSource } from './random-source';

function relativeError(actual: number, expected: number): number {
  return Math.abs(actual - expected) / Math.abs(expected);
}

function expectError(run: () => unknown, parameter: string): void {
  try {
    run();
    expect.unreachable('should have thrown');
  } catch (error) {
    expect(error).toBeInstanceOf(PrivacyParameterError);
    expect((error as PrivacyParameterError).parameter).toBe(parameter);
  }
}

describe('regularizedIncompleteBeta and betaQuantile', () => {
  it('closed forms: I_x(1, 1) = x, I_x(a, 1) = x^a, I_x(1, b) = 1 - (1 - x)^b, I_0.5(a, a) = 1/2', () => {
    for (const x of [1e-9, 0.01, 0.3, 0.5, 0.77, 0.999]) {
      expect(relativeError(regularizedIncompleteBeta(x, 1, 1), x)).toBeLessThan(1e-13);
      expect(relativeError(regularizedIncompleteBeta(x, 3.5, 1), x ** 3.5)).toBeLessThan(1e-12);
      expect(relativeError(regularizedIncompleteBeta(x, 1, 7), -Math.expm1(7 * Math.log1p(-x)))).toBeLessThan(1e-12);
    }
    // The log-gamma prefactor carries ~2^-52 log Gamma(2a) of rounding: 1e-11 at a = 4000.
    for (const a of [0.5, 2, 30]) expect(regularizedIncompleteBeta(0.5, a, a)).toBeCloseTo(0.5, 12);
    expect(regularizedIncompleteBeta(0.5, 4000, 4000)).toBeCloseTo(0.5, 10);
  });

  it('betaQuantile inverts it', () => {
    for (const [p, a, b] of [
      [0.025, 7, 14],
      [0.975, 8, 13],
      [1e-6, 3, 999998],
      [0.5, 0.5, 0.5],
    ] as const) {
      expect(relativeError(regularizedIncompleteBeta(betaQuantile(p, a, b), a, b), p)).toBeLessThan(1e-9);
    }
  });
});

describe('clopperPearson', () => {
  // R 4.x: binom.test(7, 20)$conf.int = 0.1539092 0.5921885 (the textbook example); all rows below also equal
  // scipy.stats.beta.ppf((1 - c)/2, k, n - k + 1) and beta.ppf((1 + c)/2, k + 1, n - k) from scipy 1.17.1, which
  // printed the full digits pinned here.
  const cases: ReadonlyArray<readonly [number, number, number, number, number]> = [
    [7, 20, 0.95, 0.1539092047845412, 0.5921885345328282],
    [0, 10, 0.95, 0, 0.3084971078187607],
    [10, 10, 0.95, 0.6915028921812392, 1],
    [1, 1000, 0.99, 5.01252926077751e-6, 0.007406286938352937],
    [500, 1000, 0.95, 0.468549172971792, 0.531450827028208],
    [3, 1000000, 0.95, 6.186725501906402e-7, 8.767247788067677e-6],
    [42, 100, 0.9, 0.3364797450775577, 0.5071585393398198],
    [999, 1000, 0.999, 0.9900461856590492, 0.9999994998750834],
  ];
  it.each(cases)('%d of %d at %d', (k, n, confidence, lower, upper) => {
    const interval = clopperPearson(k, n, confidence);
    if (lower === 0) expect(interval.lower).toBe(0);
    else expect(relativeError(interval.lower, lower)).toBeLessThan(1e-9);
    if (upper === 1) expect(interval.upper).toBe(1);
    else expect(relativeError(interval.upper, upper)).toBeLessThan(1e-9);
  });

  it('refuses impossible counts and confidences, naming the parameter', () => {
    expectError(() => clopperPearson(-1, 10, 0.95), 'successes');
    expectError(() => clopperPearson(11, 10, 0.95), 'successes');
    expectError(() => clopperPearson(1.5, 10, 0.95), 'successes');
    expectError(() => clopperPearson(0, 0, 0.95), 'trials');
    expectError(() => clopperPearson(1, 10, 1), 'confidence');
    expectError(() => clopperPearson(1, 10, 0), 'confidence');
    expectError(() => clopperPearson(1, 10, NaN), 'confidence');
  });
});

describe('empiricalEpsilonLowerBound', () => {
  it('is the published formula on Clopper-Pearson bounds at 1 - (1 - confidence)/2 each', () => {
    const counts = { falsePositives: 10, negatives: 1000, falseNegatives: 300, positives: 1000 };
    const result = empiricalEpsilonLowerBound({ ...counts, delta: 1e-5, confidence: 0.95 });
    // One-sided 97.5% bounds = upper ends of the two-sided 95% intervals.
    const fpr = clopperPearson(10, 1000, 0.95).upper;
    const fnr = clopperPearson(300, 1000, 0.95).upper;
    expect(result.falsePositiveRateUpper).toBe(fpr);
    expect(result.falseNegativeRateUpper).toBe(fnr);
    expect(result.perBoundConfidence).toBe(0.975);
    expect(result.epsilonLowerBound).toBeCloseTo(Math.log((1 - 1e-5 - fnr) / fpr), 12);
    // By hand: fpr ~ 0.0183, fnr ~ 0.329, so ln(0.671 / 0.0183) ~ 3.6.
    expect(result.epsilonLowerBound).toBeGreaterThan(3.5);
    expect(result.epsilonLowerBound).toBeLessThan(3.7);
  });

  it('is 0 for a test no better than chance, and grows with the evidence', () => {
    const chance = { falsePositives: 500, negatives: 1000, falseNegatives: 500, positives: 1000 };
    expect(empiricalEpsilonLowerBound({ ...chance, delta: 0, confidence: 0.95 }).epsilonLowerBound).toBe(0);
    const few = empiricalEpsilonLowerBound({
      falsePositives: 0,
      negatives: 100,
      falseNegatives: 0,
      positives: 100,
      delta: 0,
      confidence: 0.95,
    });
    const many = empiricalEpsilonLowerBound({
      falsePositives: 0,
      negatives: 10000,
      falseNegatives: 0,
      positives: 10000,
      delta: 0,
      confidence: 0.95,
    });
    // Perfect separation: the bound is limited only by the number of runs, ln((1 - p) / p) with p = 1 - 0.025^(1/n).
    const p = -Math.expm1(Math.log(0.025) / 100);
    expect(few.epsilonLowerBound).toBeCloseTo(Math.log((1 - p) / p), 12);
    expect(many.epsilonLowerBound).toBeGreaterThan(few.epsilonLowerBound + 4);
    // A larger delta explains more of the evidence, so the bound can only drop.
    const withDelta = empiricalEpsilonLowerBound({ ...chance, falsePositives: 5, delta: 0.1, confidence: 0.95 });
    const withoutDelta = empiricalEpsilonLowerBound({ ...chance, falsePositives: 5, delta: 0, confidence: 0.95 });
    expect(withDelta.epsilonLowerBound).toBeLessThan(withoutDelta.epsilonLowerBound);
  });

  it('refuses bad counts with the parameter named', () => {
    const good = { falsePositives: 1, negatives: 10, falseNegatives: 1, positives: 10, delta: 1e-5, confidence: 0.95 };
    expectError(() => empiricalEpsilonLowerBound({ ...good, negatives: 0 }), 'negatives');
    expectError(() => empiricalEpsilonLowerBound({ ...good, falsePositives: 11 }), 'falsePositives');
    expectError(() => empiricalEpsilonLowerBound({ ...good, falseNegatives: -1 }), 'falseNegatives');
    expectError(() => empiricalEpsilonLowerBound({ ...good, positives: 2.5 }), 'positives');
    expectError(() => empiricalEpsilonLowerBound({ ...good, delta: 1 }), 'delta');
    expectError(() => empiricalEpsilonLowerBound({ ...good, confidence: 1.5 }), 'confidence');
  });
});

describe('bestThresholdAudit on a known Gaussian mechanism (one release of a sum with sensitivity 1)', () => {
  // Runs of M(D) = f(D) + N(0, sigma^2): without the canary f = 0, with it f = 1. Standard normals by Box-Muller from a
  // seeded keystream, so the test is deterministic.
  function gaussians(seed: string, count: number, mean: number, sigma: number): number[] {
    const rng = new SeededRandomSource(seed);
    const uniform = (): number => (rng.nextUint32() + 0.5) / 2 ** 32;
    return Array.from({ length: count }, () => {
      const r = Math.sqrt(-2 * Math.log(uniform()));
      return mean + sigma * r * Math.cos(2 * Math.PI * uniform());
    });
  }

  // The exact epsilon of one Gaussian release at delta (Balle, Wang 2018, Theorem 8): the smallest e with
  // Phi(1/(2 sigma) - e sigma) - e^e Phi(-1/(2 sigma) - e sigma) <= delta, found by bisection.
  function trueEpsilon(sigma: number, delta: number): number {
    const phi = (x: number): number => Math.exp(logErfc(-x / Math.SQRT2)) / 2;
    const deltaAt = (e: number): number =>
      phi(1 / (2 * sigma) - e * sigma) - Math.exp(e) * phi(-1 / (2 * sigma) - e * sigma);
    let lo = 0;
    let hi = 100;
    for (let i = 0; i < 200; i++) {
      const mid = (lo + hi) / 2;
      if (deltaAt(mid) > delta) lo = mid;
      else hi = mid;
    }
    return hi;
  }

  const runs = 2000;
  const delta = 1e-5;

  it('large sigma: the certified bound is sound and well below the true epsilon', () => {
    const sigma = 2;
    const audit = bestThresholdAudit(
      gaussians('in-large', runs, 1, sigma),
      gaussians('out-large', runs, 0, sigma),
      delta,
      0.95,
    );
    const truth = trueEpsilon(sigma, delta);
    const charged = epsilonForEvents([{ noiseMultiplier: sigma, samplingRate: 1, steps: 1 }], delta).epsilon;
    expect(truth).toBeLessThanOrEqual(charged);
    expect(audit.epsilonLowerBound).toBeLessThan(truth / 2);
    expect(audit.direction).toBe('above');
    // Half of each world certifies; the other half only chose the threshold.
    expect(audit.counts.positives).toBe(runs / 2);
    expect(audit.counts.negatives).toBe(runs / 2);
  });

  it('small sigma: the worlds separate and the bound is high, limited by the number of runs', () => {
    const sigma = 0.1;
    const audit = bestThresholdAudit(
      gaussians('in-small', runs, 1, sigma),
      gaussians('out-small', runs, 0, sigma),
      delta,
      0.95,
    );
    expect(audit.counts.falsePositives + audit.counts.falseNegatives).toBe(0);
    // Zero errors in 1000 runs per world: ln((1 - p) / p) with p = 1 - 0.025^(1/1000) ~ 5.6.
    expect(audit.epsilonLowerBound).toBeGreaterThan(5);
    expect(audit.epsilonLowerBound).toBeLessThan(trueEpsilon(sigma, delta));
  });

  it('identical distributions: the bound is about 0', () => {
    const audit = bestThresholdAudit(gaussians('same-a', runs, 0, 1), gaussians('same-b', runs, 0, 1), delta, 0.95);
    expect(audit.epsilonLowerBound).toBeLessThan(0.2);
  });

  it('a mechanism that flips its scores is found through the `below` direction', () => {
    const audit = bestThresholdAudit(
      gaussians('in-flip', 400, -1, 0.1),
      gaussians('out-flip', 400, 0, 0.1),
      delta,
      0.95,
    );
    expect(audit.direction).toBe('below');
    expect(audit.epsilonLowerBound).toBeGreaterThan(3);
  });

  it('refuses non-finite or too few scores', () => {
    expectError(() => bestThresholdAudit([1], [0, 1], delta, 0.95), 'scoresIn');
    expectError(() => bestThresholdAudit([0, 1], [0, NaN], delta, 0.95), 'scoresOut');
    expectError(() => bestThresholdAudit([0, 1], [0, 1], -1, 0.95), 'delta');
    expectError(() => bestThresholdAudit([0, 1], [0, 1], delta, 1), 'confidence');
    expect(PrivacyParameterErrorCode.InvalidOption).toBe('INVALID_OPTION');
  });
});
