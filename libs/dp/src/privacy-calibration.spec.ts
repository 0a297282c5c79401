import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  epsilonForEvents,
  epsilonForNoise,
  MAX_CALIBRATED_NOISE_MULTIPLIER,
  noiseForEpsilon,
  studyPrivacyCost,
} from './privacy-calibration';
import { PrivacyParameterError, PrivacyParameterErrorCode } from './privacy-parameter.exception';
import { OPACUS_DEFAULT_ALPHAS, RDP_ACCOUNTANT_NAME } from './rdp-accountant';

const SMALL_GRID = [1.5, 2, 3, 4.5, 8, 16, 32, 64];

function expectError(run: () => unknown, code: PrivacyParameterErrorCode, parameter: string): void {
  try {
    run();
    expect.unreachable('should have thrown');
  } catch (error) {
    expect(error).toBeInstanceOf(PrivacyParameterError);
    expect((error as PrivacyParameterError).code).toBe(code);
    expect((error as PrivacyParameterError).parameter).toBe(parameter);
  }
}

describe('epsilonForNoise / studyPrivacyCost', () => {
  // pytorch/opacus opacus/tests/accountants_test.py, test_rdp_accountant -> 7.32911117143.
  it('prices the Opacus reference run and names the accountant', () => {
    const cost = studyPrivacyCost({
      noiseMultiplier: 1.5,
      samplingRate: 0.04,
      steps: 2250,
      delta: 1e-5,
      orders: OPACUS_DEFAULT_ALPHAS,
    });
    expect(cost.epsilon).toBeCloseTo(7.32911117143, 9);
    expect(cost.bestOrder).toBe(3.9);
    expect(cost.accountant).toBe(RDP_ACCOUNTANT_NAME);
  });

  it('studyPrivacyCost is epsilonForNoise, and a single-event list prices the same', () => {
    const query = { noiseMultiplier: 1.1, samplingRate: 0.01, steps: 1000, delta: 1e-5 };
    const cost = studyPrivacyCost(query);
    expect(cost).toEqual(epsilonForNoise(query));
    expect(epsilonForEvents([query], 1e-5)).toEqual(cost);
    // mpmath reference (reference/rdp_reference.py): 1.7117700912181726 at order 9.6 on the default grid.
    expect(cost.epsilon).toBeCloseTo(1.7117700912181726, 10);
  });

  it('validates every parameter with a typed error', () => {
    const good = { noiseMultiplier: 1, samplingRate: 0.01, steps: 100, delta: 1e-5 };
    expectError(
      () => epsilonForNoise({ ...good, noiseMultiplier: -1 }),
      PrivacyParameterErrorCode.InvalidNoiseMultiplier,
      'noiseMultiplier',
    );
    expectError(
      () => epsilonForNoise({ ...good, samplingRate: 2 }),
      PrivacyParameterErrorCode.InvalidSamplingRate,
      'samplingRate',
    );
    expectError(() => epsilonForNoise({ ...good, steps: 0 }), PrivacyParameterErrorCode.InvalidSteps, 'steps');
    expectError(() => epsilonForNoise({ ...good, delta: 0 }), PrivacyParameterErrorCode.InvalidDelta, 'delta');
    expectError(() => epsilonForNoise({ ...good, delta: 1 }), PrivacyParameterErrorCode.InvalidDelta, 'delta');
  });
});

describe('noiseForEpsilon', () => {
  // pytorch/opacus opacus/tests/accountants_test.py, test_get_noise_multiplier_rdp_steps (8, 1e-5, q 0.04, 2000 steps
  // -> 1.3562) and test_get_noise_multiplier_rdp_epochs (90 epochs = 2250 steps -> 1.416). Opacus stops its bisection
  // once epsilon is within 0.01 below the target and returns the upper end, so its sigma is an over-estimate of the
  // smallest one: ours must not exceed it, and Opacus' sigma must land within 0.01 below the target.
  it.each([
    [2000, 1.3562],
    [2250, 1.416],
  ])('agrees with Opacus get_noise_multiplier for %d steps (published %d)', (steps, published) => {
    const query = { targetEpsilon: 8, samplingRate: 0.04, steps, delta: 1e-5, orders: OPACUS_DEFAULT_ALPHAS };
    const calibrated = noiseForEpsilon(query);
    expect(calibrated.noiseMultiplier).toBeLessThanOrEqual(published);
    expect(calibrated.noiseMultiplier).toBeGreaterThan(published - 0.005);
    const atPublished = epsilonForNoise({ ...query, noiseMultiplier: published }).epsilon;
    expect(atPublished).toBeLessThanOrEqual(8);
    expect(atPublished).toBeGreaterThanOrEqual(8 - 0.01);
  });

  it('round trip on the default grid: epsilon(noise(eps)) <= eps within 1e-6, and 1e-6 less noise overshoots', () => {
    for (const [targetEpsilon, samplingRate, steps, delta] of [
      [1, 0.01, 1000, 1e-5],
      [8, 0.004, 25000, 1e-6],
      [0.5, 0.2, 10, 1e-5],
    ] as const) {
      const calibrated = noiseForEpsilon({ targetEpsilon, samplingRate, steps, delta });
      const again = epsilonForNoise({ noiseMultiplier: calibrated.noiseMultiplier, samplingRate, steps, delta });
      expect(again.epsilon).toBe(calibrated.epsilon);
      expect(again.epsilon).toBeLessThanOrEqual(targetEpsilon);
      expect(again.epsilon).toBeGreaterThanOrEqual(targetEpsilon * (1 - 1e-6));
      const less = epsilonForNoise({
        noiseMultiplier: calibrated.noiseMultiplier * (1 - 1e-6),
        samplingRate,
        steps,
        delta,
      });
      expect(less.epsilon).toBeGreaterThan(targetEpsilon);
    }
  });

  it('round trip property over random targets', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.2, max: 20, noNaN: true }),
        fc.double({ min: 1e-3, max: 1, noNaN: true }),
        fc.integer({ min: 1, max: 3000 }),
        fc.constantFrom(1e-3, 1e-5, 1e-8),
        (targetEpsilon, samplingRate, steps, delta) => {
          const query = { samplingRate, steps, delta, orders: SMALL_GRID };
          let calibrated;
          try {
            calibrated = noiseForEpsilon({ ...query, targetEpsilon });
          } catch (error) {
            // Legitimate only if even the largest multiplier overshoots (small grids cap how low epsilon can go).
            expect((error as PrivacyParameterError).code).toBe(PrivacyParameterErrorCode.TargetUnreachable);
            const atMax = epsilonForNoise({ ...query, noiseMultiplier: MAX_CALIBRATED_NOISE_MULTIPLIER });
            expect(atMax.epsilon).toBeGreaterThan(targetEpsilon);
            return;
          }
          const again = epsilonForNoise({ ...query, noiseMultiplier: calibrated.noiseMultiplier });
          expect(again.epsilon).toBeLessThanOrEqual(targetEpsilon);
          // epsilon(sigma) is continuous except where the KL bound (delta >= sqrt(1 - exp(-rdp))) drops it to 0 at once.
          if (again.epsilon > 0) expect(again.epsilon).toBeGreaterThanOrEqual(targetEpsilon * (1 - 1e-6));
          // Minimality: a hair less noise overshoots the target.
          const less = epsilonForNoise({ ...query, noiseMultiplier: calibrated.noiseMultiplier * (1 - 1e-9) });
          expect(less.epsilon).toBeGreaterThan(targetEpsilon);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('epsilonForNoise then noiseForEpsilon gives back the noise multiplier', () => {
    const query = { samplingRate: 0.02, steps: 500, delta: 1e-5 };
    const { epsilon } = epsilonForNoise({ ...query, noiseMultiplier: 1.234 });
    const { noiseMultiplier } = noiseForEpsilon({ ...query, targetEpsilon: epsilon });
    expect(Math.abs(noiseMultiplier - 1.234)).toBeLessThan(1e-6 * 1.234);
  });

  it('throws TargetUnreachable when even the largest noise multiplier is not enough', () => {
    expectError(
      () => noiseForEpsilon({ targetEpsilon: 1e-9, samplingRate: 0.5, steps: 100000, delta: 1e-5 }),
      PrivacyParameterErrorCode.TargetUnreachable,
      'targetEpsilon',
    );
    expect(MAX_CALIBRATED_NOISE_MULTIPLIER).toBe(1e4);
  });

  it('validates its inputs', () => {
    const good = { targetEpsilon: 1, samplingRate: 0.01, steps: 100, delta: 1e-5 };
    expectError(
      () => noiseForEpsilon({ ...good, targetEpsilon: 0 }),
      PrivacyParameterErrorCode.InvalidEpsilon,
      'targetEpsilon',
    );
    expectError(
      () => noiseForEpsilon({ ...good, targetEpsilon: -1 }),
      PrivacyParameterErrorCode.InvalidEpsilon,
      'targetEpsilon',
    );
    expectError(
      () => noiseForEpsilon({ ...good, samplingRate: 0 }),
      PrivacyParameterErrorCode.InvalidSamplingRate,
      'samplingRate',
    );
    expectError(
      () => noiseForEpsilon({ ...good, samplingRate: -0.5 }),
      PrivacyParameterErrorCode.InvalidSamplingRate,
      'samplingRate',
    );
    expectError(() => noiseForEpsilon({ ...good, steps: 1.5 }), PrivacyParameterErrorCode.InvalidSteps, 'steps');
    expectError(() => noiseForEpsilon({ ...good, delta: 1.5 }), PrivacyParameterErrorCode.InvalidDelta, 'delta');
    expectError(() => noiseForEpsilon({ ...good, orders: [0.5] }), PrivacyParameterErrorCode.InvalidOrder, 'orders');
  });
});
