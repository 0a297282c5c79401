import type { StudyPlan } from '@tessera/protocol';
import { planForTest } from '@tessera/protocol/testing';
import { describe, expect, it } from 'vitest';
import { epsilonForNoise } from './privacy-calibration';
import {
  chargedEpsilon,
  finalEvaluationReleases,
  personalizationStepsOf,
  plannedEvaluationReleases,
  planLimitRefusal,
  privacyMechanismOf,
  PrivacyPlanError,
  privacySpendOf,
} from './study-privacy';

/** The test plan (DP-SGD, q = 0.1, 3 rounds × 2 local epochs, noisy final evaluation) with a fixed σ or 'derive'. */
function dpPlan(noiseMultiplier: number | 'derive', personalization?: StudyPlan['personalization']): StudyPlan {
  const plan = planForTest({
    privacy: {
      mode: 'dp-sgd',
      unit: 'record',
      targetEpsilon: 1,
      delta: 1e-5,
      clipNorm: 1,
      noiseMultiplier,
      samplingRate: 0.1,
    },
  });
  return personalization ? { ...plan, personalization } : plan;
}

describe('the privacy price of personalization (DP-SGD)', () => {
  it('counts the fine-tuning epochs and the local baseline’s rounds × local epochs as DP-SGD steps', () => {
    expect(personalizationStepsOf(dpPlan('derive'))).toBe(0);
    // 4 epochs × round(1/q) = 40; baseline 3 rounds × 2 local epochs = 6 epochs more = 60.
    expect(personalizationStepsOf(dpPlan('derive', { method: 'fine-tune', epochs: 4 }))).toBe(40);
    expect(personalizationStepsOf(dpPlan('derive', { method: 'fine-tune', epochs: 4, localBaseline: true }))).toBe(100);
    const noDp = { ...planForTest({ privacy: { mode: 'none' } }), personalization: { method: 'fine-tune', epochs: 4 } };
    expect(personalizationStepsOf(noDp as StudyPlan)).toBe(0);
  });

  it('adds those steps to the planned ε, which the accountant composes with the training rounds’', () => {
    const sigma = 8;
    const plain = privacyMechanismOf(dpPlan(sigma))!;
    const m = privacyMechanismOf(dpPlan(sigma, { method: 'fine-tune', epochs: 4 }))!;
    expect(m.personalizationSteps).toBe(40);
    const training = epsilonForNoise({ noiseMultiplier: sigma, samplingRate: 0.1, steps: 3 * 20 + 40, delta: 1e-5 });
    expect(chargedEpsilon(m, 3, 0, 1)).toBeCloseTo(training.epsilon, 12);
    expect(m.plannedEpsilon).toBeGreaterThanOrEqual(chargedEpsilon(m, 3, 0, 1));
    // (The planned ε is max(training, evaluation); the evaluation noise is derived to the target, so compare training.)
    expect(chargedEpsilon(m, 3, 0, 1)).toBeGreaterThan(chargedEpsilon(plain, 3, 0));
    // Without the personalization charge the training part is the plain plan's.
    expect(chargedEpsilon(m, 3, 0, 0)).toBeCloseTo(chargedEpsilon(plain, 3, 0), 12);
  });

  it('derives more noise for the same target, and refuses a given σ that only the training rounds fit', () => {
    const derived = privacyMechanismOf(dpPlan('derive'))!;
    const withIt = privacyMechanismOf(dpPlan('derive', { method: 'fine-tune', epochs: 10, localBaseline: true }))!;
    expect(withIt.noiseMultiplier).toBeGreaterThan(derived.noiseMultiplier);
    expect(withIt.plannedEpsilon).toBeLessThanOrEqual(1);
    // σ that meets ε = 1 for the rounds alone but not with 160 more steps.
    const sigma = derived.noiseMultiplier * 1.001;
    expect(privacyMechanismOf(dpPlan(sigma))!.plannedEpsilon).toBeLessThanOrEqual(1);
    expect(() => privacyMechanismOf(dpPlan(sigma, { method: 'fine-tune', epochs: 10, localBaseline: true }))).toThrow(
      PrivacyPlanError,
    );
    expect(() => privacyMechanismOf(dpPlan(sigma, { method: 'fine-tune', epochs: 10, localBaseline: true }))).toThrow(
      /rounds and personalization \(220 steps/,
    );
  });

  it('plans one noisy release per evaluated model at the final evaluation', () => {
    const plan = dpPlan('derive', { method: 'fine-tune', epochs: 2, localBaseline: true });
    expect(finalEvaluationReleases(plan)).toBe(3);
    expect(plannedEvaluationReleases(plan)).toBe(3);
    expect(privacyMechanismOf(plan)!.evaluation!.releases).toBe(3);
    expect(finalEvaluationReleases(dpPlan('derive'))).toBe(1);
  });

  it('charges personalization once: the spend carries it, a second one is refused', () => {
    const m = privacyMechanismOf(dpPlan('derive', { method: 'fine-tune', epochs: 2 }))!;
    const spend = privacySpendOf(m, 3, 2, { trainingRounds: 0, evaluationReleases: 2, personalizations: 1 }, 1);
    expect(spend.personalizations).toBe(1);
    expect(spend.epsilonCumulative).toBeCloseTo(chargedEpsilon(m, 3, 2, 1), 12);
    expect(spend.epsilonRound).toBeCloseTo(chargedEpsilon(m, 3, 2, 1) - chargedEpsilon(m, 3, 0, 0), 12);
    expect(planLimitRefusal(m, { trainingRounds: 3, evaluationReleases: 2, personalizations: 1 })).toBeNull();
    expect(planLimitRefusal(m, { trainingRounds: 3, evaluationReleases: 2, personalizations: 2 })).toMatch(
      /second personalization/,
    );
    const plain = privacyMechanismOf(dpPlan('derive'))!;
    expect(planLimitRefusal(plain, { trainingRounds: 1, evaluationReleases: 0, personalizations: 1 })).toMatch(
      /no personalization/,
    );
    // A plan without personalization keeps the bytes of its spend (no personalizations key).
    expect(privacySpendOf(plain, 1, 0)).not.toHaveProperty('personalizations');
  });
});
