import { privacyMechanismOf } from '@tessera/dp';
import { inferNetworkShapes, studyPlanProblems } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import {
  DIGITS_PRESET_ROUNDS,
  digitsCnnNetwork,
  digitsConvDpNetwork,
  digitsDpNetwork,
  digitsPlan,
} from './demo-digits';

const silos = Array.from({ length: 8 }, (_, i) => `00000000-0000-4000-8000-00000000000${i}`);

describe('the digits presets', () => {
  it('are valid plans: the small CNN without DP, a linear model on fixed scattering features with DP-SGD', () => {
    const plain = digitsPlan(silos, { privacy: 'none', epsilon: 3 });
    const dp = digitsPlan(silos, { privacy: 'dp-sgd', epsilon: 3 });
    expect(studyPlanProblems(plain)).toEqual([]);
    expect(studyPlanProblems(dp)).toEqual([]);
    expect(plain.training.rounds).toBe(DIGITS_PRESET_ROUNDS.none);
    expect(dp.training.rounds).toBe(DIGITS_PRESET_ROUNDS['dp-sgd']);
    expect(dp.model).toEqual({ kind: 'network', network: digitsDpNetwork() });
    expect(plain.model).toEqual({ kind: 'network', network: digitsCnnNetwork() });
    const table = (plan: typeof dp) => (plan.model.kind === 'network' ? inferNetworkShapes(plan.model.network) : null);
    // The point of the DP preset: the features cost no parameters (the transform is fixed, before every trainable
    // layer), and what is learned is small, so the noise (norm σ·C·√d) is small: 25 maps of 7×7, group norm, linear.
    const dpTable = table(dp)!;
    expect(dpTable.rows[0]).toMatchObject({ kind: 'scattering', inputs: ['input'], outputShape: [7, 7, 25] });
    expect(dpTable.rows[0]!.parameters).toBe(0);
    expect(dpTable.parameters).toBe(2 * 25 + 7 * 7 * 25 * 10 + 10);
    // Without DP: the small CNN's layers with 8 and 16 filters, 52,138 parameters.
    expect(table(plain)!.parameters).toBe(8 * 9 + 8 + 16 * 8 * 9 + 16 + 7 * 7 * 16 * 64 + 64 + 64 * 10 + 10);
    expect(table(plain)!.parameters).toBe(52_138);
    expect(inferNetworkShapes(digitsConvDpNetwork()).parameters).toBe(9_098);
  });

  it('keeps every ε of the curve exact: the accountant derives σ for the whole study and charges at most the target', () => {
    const sigmas = [1, 3, 8].map((epsilon) => {
      const plan = digitsPlan(silos, { privacy: 'dp-sgd', epsilon });
      const m = privacyMechanismOf(plan)!;
      expect(m.plannedEpsilon).toBeLessThanOrEqual(epsilon);
      expect(m.plannedEpsilon).toBeGreaterThan(epsilon * 0.99);
      expect(m.stepsPerRound * m.rounds).toBe(DIGITS_PRESET_ROUNDS['dp-sgd'] * 20);
      expect(m.delta).toBe(1e-5);
      return m.noiseMultiplier;
    });
    expect(sigmas[0]).toBeGreaterThan(sigmas[1]!);
    expect(sigmas[1]).toBeGreaterThan(sigmas[2]!);
  });

  it('takes --rounds for every study when given', () => {
    expect(digitsPlan(silos, { privacy: 'dp-sgd', epsilon: 3, rounds: 2 }).training.rounds).toBe(2);
    expect(digitsPlan(silos, { privacy: 'none', epsilon: 3, rounds: 2 }).training.rounds).toBe(2);
  });
});
