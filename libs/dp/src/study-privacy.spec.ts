import { planForTest } from '@tessera/protocol/testing';
import { describe, expect, it } from 'vitest';
import {
  chargedEpsilon,
  epsilonAfterEvaluations,
  epsilonAfterRounds,
  plannedEvaluationReleases,
  planLimitRefusal,
  privacyMechanismOf,
  privacySpendOf,
} from './study-privacy';
import { epsilonForNoise } from './privacy-calibration';

describe('privacy mechanism of a plan', () => {
  it('derives the evaluation noise so the planned evaluation releases alone stay within the target', () => {
    const plan = planForTest({
      release: { evaluation: { mode: 'noisy', rounds: 'every', scoreBins: 4 }, trainingExamples: 'none' },
    });
    const m = privacyMechanismOf(plan)!;
    expect(m.evaluation).not.toBeNull();
    expect(m.evaluation!.releases).toBe(plan.training.rounds + 1);
    const evalEpsilon = epsilonForNoise({
      noiseMultiplier: m.evaluation!.noiseStddev,
      samplingRate: 1,
      steps: m.evaluation!.releases,
      delta: m.delta,
    }).epsilon;
    expect(evalEpsilon).toBeLessThanOrEqual(m.targetEpsilon);
    // Derived, not arbitrary: a little less noise would cross the target.
    const less = epsilonForNoise({
      noiseMultiplier: m.evaluation!.noiseStddev * 0.99,
      samplingRate: 1,
      steps: m.evaluation!.releases,
      delta: m.delta,
    }).epsilon;
    expect(less).toBeGreaterThan(m.targetEpsilon);
    expect(m.plannedEpsilon).toBeLessThanOrEqual(m.targetEpsilon);
  });

  it('keeps a derived mechanism for the same plan, frozen, and derives again for a changed one', () => {
    const plan = planForTest();
    const first = privacyMechanismOf(plan)!;
    expect(privacyMechanismOf(structuredClone(plan))).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    const stricter = structuredClone(plan);
    if (stricter.privacy.mode === 'none') throw new Error('the test plan has differential privacy');
    stricter.privacy.targetEpsilon = stricter.privacy.targetEpsilon / 2;
    const second = privacyMechanismOf(stricter)!;
    expect(second).not.toBe(first);
    expect(second.noiseMultiplier).toBeGreaterThan(first.noiseMultiplier);
  });

  it('refuses an impossible plan every time (a refusal is never kept)', () => {
    const plan = planForTest();
    if (plan.privacy.mode === 'none') throw new Error('the test plan has differential privacy');
    plan.privacy.noiseMultiplier = 0.01;
    expect(() => privacyMechanismOf(plan)).toThrow(/above the target/);
    expect(() => privacyMechanismOf(plan)).toThrow(/above the target/);
  });

  it('has no evaluation noise when the plan releases no noisy evaluation', () => {
    const none = planForTest({ release: { evaluation: { mode: 'none' }, trainingExamples: 'none' } });
    expect(privacyMechanismOf(none)!.evaluation).toBeNull();
    expect(plannedEvaluationReleases(none)).toBe(0);
    const final = planForTest();
    expect(plannedEvaluationReleases(final)).toBe(1);
  });

  it('charges the larger of the training and evaluation parts (parallel composition over disjoint records)', () => {
    const m = privacyMechanismOf(
      planForTest({
        release: { evaluation: { mode: 'noisy', rounds: 'every', scoreBins: 4 }, trainingExamples: 'none' },
      }),
    )!;
    for (const [t, e] of [
      [0, 0],
      [1, 0],
      [0, 2],
      [2, 3],
      [3, 4],
    ] as const) {
      expect(chargedEpsilon(m, t, e)).toBe(Math.max(epsilonAfterRounds(m, t), epsilonAfterEvaluations(m, e)));
    }
    expect(chargedEpsilon(m, 0, 0)).toBe(0);
  });

  it('reports a spend whose round figure is what this charge added', () => {
    const m = privacyMechanismOf(planForTest())!;
    const first = privacySpendOf(m, 1, 0);
    const second = privacySpendOf(m, 2, 0);
    expect(first.epsilonCumulative).toBe(epsilonAfterRounds(m, 1));
    expect(second.epsilonRound).toBeCloseTo(second.epsilonCumulative - first.epsilonCumulative, 12);
    expect(second).toMatchObject({ trainingRounds: 2, evaluationReleases: 0, steps: m.stepsPerRound });
  });
});

describe('plan limits the agent enforces', () => {
  const m = privacyMechanismOf(planForTest({ rounds: 3 }))!;

  it('allows the planned rounds and evaluations', () => {
    expect(planLimitRefusal(m, { trainingRounds: 3, evaluationReleases: 1 })).toBeNull();
  });

  it('refuses a fourth training round of a three-round plan', () => {
    expect(planLimitRefusal(m, { trainingRounds: 4, evaluationReleases: 0 })).toMatch(
      /approved plan has 3 training rounds; this would be training round 4/,
    );
  });

  it('refuses an evaluation release the plan does not have', () => {
    expect(planLimitRefusal(m, { trainingRounds: 1, evaluationReleases: 2 })).toMatch(/allows 1 noisy evaluation/);
  });

  it('refuses a charge above the target even within the round count', () => {
    // A plan whose σ is given and sits just at the target: any extra step would cross it.
    const tight = privacyMechanismOf(planForTest({ rounds: 3 }))!;
    const overSpent = { ...tight, rounds: 10 };
    const refusal = planLimitRefusal(overSpent, { trainingRounds: 10, evaluationReleases: 0 });
    expect(refusal).toMatch(/above the approved target ε = 1/);
  });
});
