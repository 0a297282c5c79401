import { privacyMechanismOf, privacySpendOf } from '@tessera/dp';
import type { EvaluationPayload, StudyPlan } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import { chargeOfTask, reportAgrees } from '../privacy/privacy-report.util';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import { personalizationReportProblem } from './release-check.util';

const SILOS = ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222'];
const EXACT: EvaluationPayload = { kind: 'exact', loss: 0.5, accuracy: 0.8, auc: 0.9, n: 30, positives: 12 };

function exactPlan(personalization?: StudyPlan['personalization']): StudyPlan {
  const plan = heartDiseasePlan(SILOS, {
    release: { evaluation: { mode: 'exact', rounds: 'final' }, trainingExamples: 'none' },
  });
  return personalization ? { ...plan, personalization } : plan;
}

function dpPlan(personalization?: StudyPlan['personalization']): StudyPlan {
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
  return personalization ? { ...plan, personalization } : plan;
}

describe('personalizationReportProblem: what the hub accepts of the personal models', () => {
  it('accepts exactly the planned payloads, of the plan’s kind', () => {
    const both = exactPlan({ method: 'fine-tune', epochs: 2, localBaseline: true });
    expect(personalizationReportProblem(both, null, { personalized: EXACT, localBaseline: EXACT })).toBeNull();
    expect(personalizationReportProblem(exactPlan(), null, {})).toBeNull();
  });

  it('refuses a missing, an unplanned or a wrongly made payload, naming the field', () => {
    const one = exactPlan({ method: 'fine-tune', epochs: 2 });
    expect(personalizationReportProblem(one, null, {})).toMatch(/^personalized: .*missing/);
    expect(personalizationReportProblem(one, null, { personalized: EXACT, localBaseline: EXACT })).toMatch(
      /^localBaseline: this plan releases no localBaseline model evaluation/,
    );
    expect(personalizationReportProblem(exactPlan(), null, { personalized: EXACT })).toMatch(/^personalized: /);
    const noisy: EvaluationPayload = {
      kind: 'noisy-histogram',
      noiseStddev: 3,
      negatives: [1, 2, 3, 4],
      positives: [4, 3, 2, 1],
    };
    expect(personalizationReportProblem(one, null, { personalized: noisy })).toMatch(/^personalized/);
  });

  it('refuses a noisy payload with less noise than the plan derives', () => {
    const plan = dpPlan({ method: 'fine-tune', epochs: 2 });
    const m = privacyMechanismOf(plan)!;
    const histogram = (noiseStddev: number): EvaluationPayload => ({
      kind: 'noisy-histogram',
      noiseStddev,
      negatives: [1, 2, 3, 4],
      positives: [4, 3, 2, 1],
    });
    expect(personalizationReportProblem(plan, m, { personalized: histogram(m.evaluation!.noiseStddev) })).toBeNull();
    expect(personalizationReportProblem(plan, m, { personalized: histogram(m.evaluation!.noiseStddev / 2) })).toMatch(
      /^personalized/,
    );
  });
});

describe('the hub’s charge of a personalizing final evaluation', () => {
  it('charges the personalization once and one noisy release per evaluated model', () => {
    const plan = dpPlan({ method: 'fine-tune', epochs: 2, localBaseline: true });
    const m = privacyMechanismOf(plan)!;
    expect(chargeOfTask(m, plan, 'evaluate')).toEqual({
      trainingRounds: 0,
      evaluationReleases: 3,
      personalizations: 1,
    });
    expect(chargeOfTask(m, plan, 'train')).toEqual({ trainingRounds: 1, evaluationReleases: 0 });
    const plain = dpPlan();
    expect(chargeOfTask(privacyMechanismOf(plain)!, plain, 'evaluate')).toEqual({
      trainingRounds: 0,
      evaluationReleases: 1,
    });
  });

  it('finds a report that leaves the personalization out in disagreement with the charge', () => {
    const plan = dpPlan({ method: 'fine-tune', epochs: 2 });
    const m = privacyMechanismOf(plan)!;
    const added = { trainingRounds: 0, evaluationReleases: 2, personalizations: 1 };
    const spend = privacySpendOf(m, 3, 2, added, 1);
    // The hub's row: cumulative counts (the spend's) and the personalization it charged.
    const charge = { ...spend, personalizations: 1 };
    expect(reportAgrees(charge, spend)).toBe(true);
    const without = privacySpendOf(m, 3, 2, { trainingRounds: 0, evaluationReleases: 2 }, 0);
    expect(reportAgrees(charge, without)).toBe(false);
  });
});
