import { privacyMechanismOf } from '@tessera/dp';
import { type StudyPlan, type UpdateHeader } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import { evaluationReportProblem, updateReleaseProblem } from './release-check.util';

const SILOS = ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222'];
const HASH = 'ab'.repeat(32);
const EXACT = { kind: 'exact', loss: 0.5, accuracy: 0.8, auc: 0.9, n: 30, positives: 12 } as const;

function header(overrides: Partial<UpdateHeader>): UpdateHeader {
  return {
    studyId: '33333333-3333-4333-8333-333333333333',
    round: 1,
    attempt: 1,
    planHash: HASH,
    baseModelHash: HASH,
    numExamples: null,
    length: 14,
    payloadSha256: HASH,
    l2Norm: 0,
    evaluation: null,
    privacy: null,
    ...overrides,
  };
}

function dpPlan(release: StudyPlan['release']): StudyPlan {
  const plan = heartDiseasePlan(SILOS, {
    privacy: {
      mode: 'dp-sgd',
      unit: 'record',
      targetEpsilon: 2,
      delta: 1e-5,
      clipNorm: 1,
      noiseMultiplier: 'derive',
      samplingRate: 0.1,
    },
  });
  plan.training.rounds = 3;
  plan.release = release;
  return plan;
}

describe('updateReleaseProblem', () => {
  it('wants the record count exactly when the plan releases it', () => {
    const open = heartDiseasePlan(SILOS); // no DP: exact metrics every round, exact counts
    expect(updateReleaseProblem(open, null, header({ numExamples: 100, evaluation: EXACT }))).toBeNull();
    expect(updateReleaseProblem(open, null, header({ numExamples: null, evaluation: EXACT }))).toMatch(
      /^numExamples: .* it is missing/,
    );
    const closed = dpPlan({ evaluation: { mode: 'none' }, trainingExamples: 'none' });
    const m = privacyMechanismOf(closed);
    expect(updateReleaseProblem(closed, m, header({}))).toBeNull();
    expect(updateReleaseProblem(closed, m, header({ numExamples: 1 }))).toMatch(
      /^numExamples: this plan does not release/,
    );
  });

  it('takes a per-round evaluation only when the plan evaluates every round, of its kind and noise', () => {
    const final = dpPlan({ evaluation: { mode: 'noisy', rounds: 'final', scoreBins: 3 }, trainingExamples: 'none' });
    const mf = privacyMechanismOf(final)!;
    const noisy = (noiseStddev: number, bins = 3) => ({
      kind: 'noisy-histogram' as const,
      noiseStddev,
      negatives: Array.from({ length: bins }, () => 1),
      positives: Array.from({ length: bins }, () => 2),
    });
    expect(updateReleaseProblem(final, mf, header({ evaluation: noisy(mf.evaluation!.noiseStddev) }))).toMatch(
      /rounds 'final'/,
    );
    const every = dpPlan({ evaluation: { mode: 'noisy', rounds: 'every', scoreBins: 3 }, trainingExamples: 'none' });
    const me = privacyMechanismOf(every)!;
    const sigma = me.evaluation!.noiseStddev;
    expect(updateReleaseProblem(every, me, header({ evaluation: noisy(sigma) }))).toBeNull();
    expect(updateReleaseProblem(every, me, header({ evaluation: null }))).toBeNull(); // releasing less is allowed
    expect(updateReleaseProblem(every, me, header({ evaluation: noisy(sigma * 0.99) }))).toMatch(
      /^evaluation\.noiseStddev: .* below the plan's evaluation noise/,
    );
    expect(updateReleaseProblem(every, me, header({ evaluation: noisy(sigma, 4) }))).toMatch(/scoreBins is 3/);
    expect(updateReleaseProblem(every, me, header({ evaluation: EXACT }))).toMatch(/exact metrics are refused/);
  });
});

describe('evaluationReportProblem', () => {
  it('allows a missing evaluation only when the plan releases none', () => {
    const none = dpPlan({ evaluation: { mode: 'none' }, trainingExamples: 'none' });
    expect(evaluationReportProblem(none, privacyMechanismOf(none), null)).toBeNull();
    expect(evaluationReportProblem(none, privacyMechanismOf(none), EXACT)).toMatch(/releases no evaluation/);
    const exact = heartDiseasePlan(SILOS);
    expect(evaluationReportProblem(exact, null, EXACT)).toBeNull();
    expect(evaluationReportProblem(exact, null, null)).toMatch(/it is missing/);
  });
});
