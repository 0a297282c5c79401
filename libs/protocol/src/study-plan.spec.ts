import { describe, expect, it } from 'vitest';
import { describePlan, releasedWithoutDp, studyPlanProblems } from './study-plan';
import { planForTest } from './study-plan.test-util';

describe('study plan: encoding constants come from the plan', () => {
  it('accepts the heart-disease plan', () => {
    expect(studyPlanProblems(planForTest())).toEqual([]);
  });

  it('refuses the old data-dependent fields (standardize, a seeded stratified split)', () => {
    const plan = planForTest() as unknown as { schema: Record<string, unknown> };
    plan.schema.standardize = true;
    plan.schema.split = { testFraction: 0.3, seed: 1, stratify: true };
    const problems = studyPlanProblems(plan);
    expect(problems.some((p) => p.startsWith('schema') && /standardize/.test(p))).toBe(true);
    expect(problems.some((p) => p.startsWith('schema.split'))).toBe(true);
  });

  it("needs a declared imputation value for every feature when missing is 'impute'", () => {
    const plan = planForTest();
    plan.schema.missing = 'impute';
    const problems = studyPlanProblems(plan);
    expect(problems).toContain(
      `schema.features.0.impute: "age" needs a declared imputation value when missing is 'impute'`,
    );
    expect(problems).toHaveLength(plan.schema.features.length);
  });

  it('refuses an imputation level that is not one of the levels', () => {
    const plan = planForTest();
    const cp = plan.schema.features.findIndex((f) => f.name === 'cp');
    plan.schema.features[cp] = { name: 'cp', type: 'categorical', levels: ['1', '2', '3', '4'], impute: '9' };
    expect(studyPlanProblems(plan)).toEqual([`schema.features.${cp}.impute: "9" is not one of the levels of "cp"`]);
  });

  it('refuses a non-positive scale', () => {
    const plan = planForTest();
    plan.schema.features[0] = { name: 'age', type: 'numeric', scaling: { center: 50, scale: 0 } };
    expect(studyPlanProblems(plan).some((p) => p.startsWith('schema.features.0.scaling.scale'))).toBe(true);
  });
});

describe('study plan: releases', () => {
  it('needs a release section', () => {
    const plan = planForTest() as unknown as Record<string, unknown>;
    delete plan.release;
    expect(studyPlanProblems(plan).some((p) => p.startsWith('release'))).toBe(true);
  });

  it('offers noisy evaluation only with record-level DP', () => {
    const plan = planForTest({
      privacy: { mode: 'none' },
      release: { evaluation: { mode: 'noisy', rounds: 'final', scoreBins: 4 }, trainingExamples: 'none' },
    });
    expect(studyPlanProblems(plan)).toHaveLength(1);
    expect(studyPlanProblems(plan)[0]).toMatch(/^release\.evaluation: noisy evaluation protects single test records/);
  });

  it('lists nothing released without DP under the default DP release', () => {
    const plan = planForTest();
    expect(releasedWithoutDp(plan)).toEqual([]);
    expect(describePlan(plan)).toContain('without DP:   nothing');
  });

  it('lists every exact release, and the update itself without DP', () => {
    const plan = planForTest({
      privacy: { mode: 'none' },
      release: { evaluation: { mode: 'exact', rounds: 'every' }, trainingExamples: 'exact' },
    });
    const listed = releasedWithoutDp(plan);
    expect(listed).toHaveLength(3);
    expect(listed[0]).toMatch(/model update itself/);
    expect(listed[1]).toMatch(/number of training records/);
    expect(listed[2]).toMatch(/accuracy, AUC.*every round/);
    expect(describePlan(plan).find((l) => l.startsWith('without DP:'))).toContain('number of training records');
  });

  it("says that DP-FedAvg shows the hub each silo's clipped update", () => {
    const plan = planForTest({
      privacy: {
        mode: 'dp-fedavg',
        unit: 'silo',
        targetEpsilon: 4,
        delta: 1e-5,
        clipNorm: 1,
        noiseMultiplier: 'derive',
      },
      release: { evaluation: { mode: 'none' }, trainingExamples: 'none' },
    });
    expect(releasedWithoutDp(plan)).toEqual([expect.stringMatching(/clipped model update, to the hub/)]);
  });
});
