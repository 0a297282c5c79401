import { describe, expect, it } from 'vitest';
import { describePlan, planHash, releasedWithoutDp, studyPlanProblems } from './study-plan';
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

describe('planHash: the hashes stewards approved stay the same', () => {
  // Computed before canonical JSON and SHA-256 moved from @tessera/audit (and node:crypto) to @tessera/canonical.
  // A stored approval names one of these hashes: if this test fails, every approval on record is void.
  const studyId = '7f3c2b1a-9e8d-4c6b-a5f4-3e2d1c0b9a87';
  const siloIds = [
    '0b0f7c1e-3a52-4d8e-9f61-2c4b8a7d5e10',
    '5d2e9a47-8c13-4b6f-a0d9-71e3c5b28f46',
    'c8a1f3d2-6e4b-4a97-b5c0-9d2e7f18a364',
  ];

  it.each([
    [
      'a DP-SGD plan, version 1',
      1,
      planForTest({ siloIds: siloIds.slice(0, 2) }),
      '95f798db4cf9b01fba87e7a6a4b94b83bedb17720dcaf583fc2b1c3352a3938b',
    ],
    [
      'the same plan, version 2',
      2,
      planForTest({ siloIds: siloIds.slice(0, 2) }),
      '13e168d8419c21b2333983ff261e05c7e572d0767e90cbd64c4b1f3d0bfc8985',
    ],
    [
      'a plan without DP releasing exact metrics',
      1,
      planForTest({
        siloIds,
        privacy: { mode: 'none' },
        release: { evaluation: { mode: 'exact', rounds: 'every' }, trainingExamples: 'exact' },
        rounds: 5,
      }),
      'a65bf5ef525caf49a962560bb12248b908c02cceaf4307ea77a22da8b12d9b54',
    ],
    [
      'a DP-FedAvg plan with a given noise multiplier',
      3,
      planForTest({
        siloIds,
        privacy: {
          mode: 'dp-fedavg',
          unit: 'silo',
          targetEpsilon: 2.5,
          delta: 1e-6,
          clipNorm: 0.5,
          noiseMultiplier: 1.1,
        },
        release: { evaluation: { mode: 'none' }, trainingExamples: 'none' },
      }),
      'cbfb458d3a4b3ba67f4720bd8593f4e2bc4a9bc5480a74d07ff68a24f8a34a19',
    ],
  ])('%s', (_name, version, plan, pinned) => {
    expect(planHash(studyId, version, plan)).toBe(pinned);
  });

  it('changes with the study, the version and any field of the plan', () => {
    const plan = planForTest({ siloIds: siloIds.slice(0, 2) });
    const base = planHash(studyId, 1, plan);
    expect(planHash(siloIds[0]!, 1, plan)).not.toBe(base);
    expect(planHash(studyId, 1, { ...plan, purpose: `${plan.purpose} ` })).not.toBe(base);
  });
});
