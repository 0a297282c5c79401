import { plannedEvaluationReleases, privacyMechanismOf } from '@tessera/dp';
import { studyPlanProblems, type StudyPlan, type StudyPrivacyCostView } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import { defaultDraft, draftToPlan, withPrivacyMode } from './plan-draft.js';
import {
  evaluationReleaseCount,
  hubEvaluationNoise,
  plannedEvaluationNoise,
  studyEvaluationNoise,
} from './privacy-accounting.js';

/** A valid DP-SGD plan with a noisy evaluation released as `rounds` says. */
function noisyPlan(rounds: 'final' | 'every', trainingRounds: string, targetEpsilon: string): StudyPlan {
  const d = withPrivacyMode(defaultDraft('test-salt-0001'), 'dp-sgd');
  d.name = 'Cardiac risk';
  d.purpose = 'Predict coronary artery disease from routine findings.';
  d.silos = ['00000000-0000-4000-8000-000000000001'];
  d.participation.minSilosPerRound = '1';
  d.training.rounds = trainingRounds;
  d.privacy.targetEpsilon = targetEpsilon;
  d.release = { ...d.release, evaluationRounds: rounds, chosen: true };
  const plan = draftToPlan(d) as StudyPlan;
  expect(studyPlanProblems(plan)).toEqual([]);
  return plan;
}

const HUB_COST: StudyPrivacyCostView = {
  mechanism: 'dp-sgd',
  unit: 'record',
  noiseMultiplier: 1.2,
  clipNorm: 1,
  samplingRate: 0.05,
  stepsPerRound: 100,
  rounds: 10,
  epsilon: 2.9,
  targetEpsilon: 3,
  delta: 1e-5,
  accountant: 'rdp',
};

/** The hub's cost view with an `evaluation` field (declared or not by the view type of this hub version). */
function withEvaluation(evaluation: unknown): StudyPrivacyCostView {
  const cost = { ...HUB_COST, evaluation };
  return cost;
}

describe('noisy evaluation in the console', () => {
  // The designer computes from the fields being edited, before there is a whole plan; these cases pin it to the
  // functions the hub and the agent run on the whole plan (@tessera/dp study-privacy.ts).
  for (const [rounds, trainingRounds, epsilon] of [
    ['final', '10', '3'],
    ['every', '10', '3'],
    ['every', '3', '0.5'],
  ] as const) {
    it(`derives the noise privacyMechanismOf derives (${rounds}, ${trainingRounds} rounds, ε = ${epsilon})`, () => {
      const plan = noisyPlan(rounds, trainingRounds, epsilon);
      const mechanism = privacyMechanismOf(plan);
      const noise = plannedEvaluationNoise(plan);
      expect(evaluationReleaseCount(plan.training.rounds, rounds)).toBe(plannedEvaluationReleases(plan));
      expect(noise?.ok).toBe(true);
      if (!noise?.ok) return;
      expect(noise.value.noiseStddev).toBe(mechanism?.evaluation?.noiseStddev);
      expect(noise.value.releases).toBe(mechanism?.evaluation?.releases);
      expect(noise.value.epsilon).toBe(mechanism?.evaluation?.plannedEpsilon);
      expect(noise.value.epsilon).toBeLessThanOrEqual(Number(epsilon));
      expect(noise.value.source).toBe('console');
    });
  }

  it('derives the noise privacyMechanismOf derives for a personalizing plan (one release per evaluated model)', () => {
    const plan = {
      ...noisyPlan('final', '10', '3'),
      personalization: { method: 'fine-tune' as const, epochs: 2, localBaseline: true },
    };
    const mechanism = privacyMechanismOf(plan);
    const noise = plannedEvaluationNoise(plan);
    expect(noise?.ok).toBe(true);
    if (!noise?.ok) return;
    expect(noise.value.releases).toBe(3);
    expect(noise.value.releases).toBe(mechanism?.evaluation?.releases);
    expect(noise.value.noiseStddev).toBe(mechanism?.evaluation?.noiseStddev);
  });

  it('has no evaluation noise for plans without a noisy evaluation', () => {
    const plan = noisyPlan('final', '10', '3');
    const exact = {
      ...plan,
      release: { ...plan.release, evaluation: { mode: 'exact' as const, rounds: 'final' as const } },
    };
    expect(plannedEvaluationNoise(exact)).toBeNull();
    expect(studyEvaluationNoise(exact, withEvaluation({ noiseStddev: 4.5, releases: 1 }))).toBeNull();
  });

  it('prefers the noise the hub exposes, and ignores a malformed or absent one', () => {
    const plan = noisyPlan('final', '10', '3');
    const exposed = withEvaluation({ noiseStddev: 4.5, releases: 1, plannedEpsilon: 2.5 });
    expect(hubEvaluationNoise(exposed)).toEqual({ noiseStddev: 4.5, releases: 1, epsilon: 2.5, source: 'hub' });
    expect(studyEvaluationNoise(plan, exposed)).toEqual({
      ok: true,
      value: { noiseStddev: 4.5, releases: 1, epsilon: 2.5, source: 'hub' },
    });
    expect(hubEvaluationNoise(HUB_COST)).toBeNull();
    expect(hubEvaluationNoise(null)).toBeNull();
    expect(hubEvaluationNoise(withEvaluation(null))).toBeNull();
    expect(hubEvaluationNoise(withEvaluation({ noiseStddev: '4.5', releases: 1 }))).toBeNull();
    expect(hubEvaluationNoise(withEvaluation({ noiseStddev: 0, releases: 1 }))).toBeNull();
    // Without the hub's figure, the console's own derivation.
    expect(studyEvaluationNoise(plan, HUB_COST)).toEqual(plannedEvaluationNoise(plan));
  });
});
