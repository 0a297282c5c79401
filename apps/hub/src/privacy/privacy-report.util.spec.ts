import { privacyMechanismOf, privacySpendOf } from '@tessera/dp';
import { type StudyPlan } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import { chargeOfTask, privacyReportRefusal, reportAgrees } from './privacy-report.util';

const SILOS = ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222'];

function dpPlan(release?: StudyPlan['release']): StudyPlan {
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
  if (release) plan.release = release;
  return plan;
}

describe('chargeOfTask', () => {
  it('charges a training round per training task, and a noisy release per evaluation it carries', () => {
    const final = dpPlan();
    const m = privacyMechanismOf(final)!;
    expect(chargeOfTask(m, final, 'train')).toEqual({ trainingRounds: 1, evaluationReleases: 0 });
    expect(chargeOfTask(m, final, 'evaluate')).toEqual({ trainingRounds: 0, evaluationReleases: 1 });
    const every = dpPlan({ evaluation: { mode: 'noisy', rounds: 'every', scoreBins: 4 }, trainingExamples: 'none' });
    const me = privacyMechanismOf(every)!;
    expect(chargeOfTask(me, every, 'train')).toEqual({ trainingRounds: 1, evaluationReleases: 1 });
  });

  it('charges nothing for an exact evaluation (released without DP and listed as such)', () => {
    const exact = dpPlan({ evaluation: { mode: 'exact', rounds: 'every' }, trainingExamples: 'none' });
    const m = privacyMechanismOf(exact)!;
    expect(m.evaluation).toBeNull();
    expect(chargeOfTask(m, exact, 'evaluate')).toEqual({ trainingRounds: 0, evaluationReleases: 0 });
    expect(chargeOfTask(m, exact, 'train')).toEqual({ trainingRounds: 1, evaluationReleases: 0 });
  });
});

describe('privacyReportRefusal', () => {
  const m = privacyMechanismOf(dpPlan())!;
  const honest = privacySpendOf(m, 1, 0);

  it('accepts the report an agent computes from the same plan', () => {
    expect(privacyReportRefusal(m, honest)).toBeNull();
    // More noise than planned is more protection, not a reason to refuse.
    expect(privacyReportRefusal(m, { ...honest, noiseMultiplier: m.noiseMultiplier * 2 })).toBeNull();
  });

  it('refuses every weaker mechanism, naming the field', () => {
    const cases: [Partial<typeof honest>, RegExp][] = [
      [{ noiseMultiplier: m.noiseMultiplier * 0.999 }, /^privacy\.noiseMultiplier: .* below the plan's/],
      [{ clipNorm: m.clipNorm * 1.01 }, /^privacy\.clipNorm: .* above the plan's/],
      [{ samplingRate: 0.11 }, /^privacy\.samplingRate/],
      [{ samplingRate: 0.09 }, /^privacy\.samplingRate/],
      [{ steps: m.stepsPerRound + 1 }, /^privacy\.steps/],
      [{ delta: 1e-4 }, /^privacy\.delta/],
      [{ mechanism: 'dp-fedavg', unit: 'silo' }, /^privacy: the report states dp-fedavg per silo/],
    ];
    for (const [change, reason] of cases) expect(privacyReportRefusal(m, { ...honest, ...change })).toMatch(reason);
  });
});

describe('reportAgrees', () => {
  const m = privacyMechanismOf(dpPlan())!;
  const charge = privacySpendOf(m, 2, 0);

  it('agrees only on the same counts and the same ε', () => {
    expect(reportAgrees(charge, privacySpendOf(m, 2, 0))).toBe(true);
    expect(reportAgrees(charge, privacySpendOf(m, 1, 0))).toBe(false);
    expect(reportAgrees(charge, privacySpendOf(m, 3, 0))).toBe(false);
    expect(reportAgrees(charge, { ...privacySpendOf(m, 2, 0), epsilonCumulative: 0.01 })).toBe(false);
    expect(reportAgrees(charge, { ...privacySpendOf(m, 2, 0), epsilonRound: 0 })).toBe(false);
  });
});
