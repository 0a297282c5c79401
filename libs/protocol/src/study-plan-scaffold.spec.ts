import { describe, expect, it } from 'vitest';
import {
  describePlan,
  planHash,
  studyPlanProblems,
  updateLengthOf,
  type PrivacyPlan,
  type StudyPlan,
} from './study-plan';
import { planForTest } from './study-plan.test-util';

const NO_DP: PrivacyPlan = { mode: 'none' };
const EXACT = { evaluation: { mode: 'exact', rounds: 'every' }, trainingExamples: 'exact' } as const;

function scaffold(plan: StudyPlan): StudyPlan {
  return { ...plan, training: { ...plan.training, algorithm: 'scaffold' } };
}

describe('study plan: SCAFFOLD', () => {
  it('is accepted with FedAvg aggregation, without DP and under dp-sgd, and is part of the hash and the description', () => {
    const plain = planForTest({ privacy: NO_DP, release: EXACT });
    const withDpSgd = planForTest();
    expect(studyPlanProblems(scaffold(plain))).toEqual([]);
    expect(studyPlanProblems(scaffold(withDpSgd))).toEqual([]);
    const id = '00000000-0000-4000-8000-000000000001';
    expect(planHash(id, 1, scaffold(plain))).not.toBe(planHash(id, 1, plain));
    expect(describePlan(scaffold(plain)).join('\n')).toMatch(/scaffold/);
  });

  it('doubles the update: the model delta, then the control delta', () => {
    expect(updateLengthOf(scaffold(planForTest()), 15)).toBe(30);
    expect(updateLengthOf(planForTest(), 15)).toBe(15);
  });

  it.each<[string, StudyPlan, RegExp]>([
    [
      'a robust aggregator',
      planForTest({ privacy: NO_DP, release: EXACT, aggregation: { aggregator: { kind: 'coordinate-median' } } }),
      /^aggregation\.aggregator: .*coordinate-median is not a mean/,
    ],
    [
      'norm bounding',
      planForTest({
        privacy: NO_DP,
        release: EXACT,
        aggregation: { aggregator: { kind: 'fedavg' }, normBound: { mode: 'fixed', maxNorm: 1 } },
      }),
      /^aggregation\.normBound: scaffold/,
    ],
    [
      'screening',
      planForTest({ privacy: NO_DP, release: EXACT, screening: { threshold: 3.5, exclude: false } }),
      /^screening: scaffold uploads/,
    ],
    [
      'silo-level DP',
      planForTest({
        privacy: {
          mode: 'dp-fedavg',
          unit: 'silo',
          targetEpsilon: 4,
          delta: 1e-5,
          clipNorm: 1,
          noiseMultiplier: 'derive',
        },
        release: { evaluation: { mode: 'none' }, trainingExamples: 'none' },
      }),
      /^training\.algorithm: scaffold under dp-fedavg/,
    ],
  ])('is refused with %s, naming the field', (_, plan, message) => {
    const problems = studyPlanProblems(scaffold(plan));
    expect(problems.some((p) => message.test(p))).toBe(true);
    // The same plan with FedAvg has no such problem: the refusal is SCAFFOLD's.
    expect(studyPlanProblems(plan).some((p) => message.test(p))).toBe(false);
  });

  it('refuses a proximal μ, which only FedProx uses', () => {
    const plan = scaffold(planForTest({ privacy: NO_DP, release: EXACT }));
    expect(studyPlanProblems({ ...plan, training: { ...plan.training, proximalMu: 0.1 } })).toEqual([
      'training.proximalMu: applies to fedprox only; scaffold corrects drift with control variates instead',
    ]);
  });
});
