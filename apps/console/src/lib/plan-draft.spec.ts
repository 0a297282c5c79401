import { HEART_DISEASE_SCHEMA, studyPlanProblems, type TabularStudyPlan } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import {
  defaultDraft,
  defaultReleaseDraft,
  draftToPlan,
  planToDraft,
  randomSplitSalt,
  withPrivacyMode,
  type PlanDraft,
} from './plan-draft.js';

const SILO = '00000000-0000-4000-8000-000000000001';

/** A complete, valid draft (the default with a name, a purpose and one invited silo). */
function validDraft(): PlanDraft {
  const d = defaultDraft('test-salt-0001');
  d.name = 'Cardiac risk';
  d.purpose = 'Predict coronary artery disease from routine findings.';
  d.silos = [SILO];
  d.participation.minSilosPerRound = '1';
  return d;
}

describe('plan drafts', () => {
  it('start from the shared Fed-Heart-Disease schema with its declared scaling, split by a fresh random salt', () => {
    const a = draftToPlan(defaultDraft()) as TabularStudyPlan;
    const b = draftToPlan(defaultDraft()) as TabularStudyPlan;
    expect({ ...a.schema, split: { ...a.schema.split, salt: HEART_DISEASE_SCHEMA.split.salt } }).toEqual(
      HEART_DISEASE_SCHEMA,
    );
    expect(a.schema.features.find((f) => f.name === 'age')).toEqual({
      name: 'age',
      type: 'numeric',
      scaling: { center: 55, scale: 10 },
    });
    expect(a.schema.split.salt).toMatch(/^[0-9a-f]{32}$/);
    expect(b.schema.split.salt).not.toBe(a.schema.split.salt);
    expect(randomSplitSalt()).toMatch(/^[0-9a-f]{32}$/);
  });

  it('round-trip a plan through the draft unchanged: scaling, imputation, salt and releases', () => {
    const d = validDraft();
    d.schema.missing = 'impute';
    d.schema.features.forEach((f) => {
      f.impute = f.type === 'categorical' ? (f.levels.split(',')[0] ?? '').trim() : '0';
    });
    d.schema.features[0]!.center = '60';
    d.schema.features[0]!.scale = '12.5';
    d.schema.features[1]!.center = '';
    d.schema.features[1]!.scale = '';
    Object.assign(d, withPrivacyMode(d, 'dp-sgd'));
    d.release = { ...d.release, evaluationRounds: 'every', scoreBins: '10', chosen: true };
    const plan = draftToPlan(d) as TabularStudyPlan;
    expect(studyPlanProblems(plan)).toEqual([]);
    expect(plan.schema.features[0]).toEqual({
      name: 'age',
      type: 'numeric',
      scaling: { center: 60, scale: 12.5 },
      impute: 0,
    });
    expect(plan.schema.features[1]).toEqual({ name: 'sex', type: 'numeric', impute: 0 });
    expect(plan.schema.features[8]).toEqual({
      name: 'cp',
      type: 'categorical',
      levels: ['1', '2', '3', '4'],
      impute: '1',
    });
    expect(plan.schema.split).toEqual({ testFraction: 0.34, salt: 'test-salt-0001' });
    expect(plan.release).toEqual({
      evaluation: { mode: 'noisy', rounds: 'every', scoreBins: 10 },
      trainingExamples: 'none',
    });
    expect(draftToPlan(planToDraft(plan))).toEqual(plan);
  });

  it('carry DP-FedAvg noise added by each silo under secure aggregation, and back (a valid plan)', () => {
    const d = withPrivacyMode(validDraft(), 'dp-fedavg');
    d.silos = ['a', 'b', 'c', 'd'].map((x) => `00000000-0000-4000-8000-00000000000${x}`);
    d.participation.minSilosPerRound = '4';
    d.privacy.distributed = true;
    d.secureAggregation = { enabled: true, threshold: '3', neighbourCount: '', modulusBits: '32', clipNorm: '1' };
    const plan = draftToPlan(d) as TabularStudyPlan;
    expect(plan.privacy).toMatchObject({ mode: 'dp-fedavg', unit: 'silo', clipNorm: 1, noise: 'distributed' });
    expect(studyPlanProblems(plan)).toEqual([]);
    expect(planToDraft(plan).privacy.distributed).toBe(true);
    expect(draftToPlan(planToDraft(plan))).toEqual(plan);
    // Unticked: the plan says nothing of who adds the noise (the hub, as before), and secure aggregation refuses it.
    const central = draftToPlan({ ...d, privacy: { ...d.privacy, distributed: false } }) as TabularStudyPlan;
    expect('noise' in central.privacy).toBe(false);
    expect(studyPlanProblems(central)).toEqual([
      expect.stringMatching(/^privacy\.noise: dp-fedavg with central noise/),
    ]);
  });

  it('leave hidden imputation values out of the plan when rows with missing values are dropped', () => {
    const d = validDraft();
    d.schema.features[0]!.impute = '50';
    const plan = draftToPlan(d) as TabularStudyPlan;
    expect(plan.schema.missing).toBe('drop-rows');
    expect(plan.schema.features[0]).not.toHaveProperty('impute');
  });

  it('report a half-declared scaling and a missing imputation value at their fields, not drop them', () => {
    const halfScaled = validDraft();
    halfScaled.schema.features[0]!.scale = '';
    expect(studyPlanProblems(draftToPlan(halfScaled))).toEqual([
      expect.stringMatching(/^schema\.features\.0\.scaling\.scale: /),
    ]);
    const d = validDraft();
    d.schema.missing = 'impute';
    d.schema.features.forEach((f) => void (f.impute = f.type === 'categorical' ? '1' : '0'));
    d.schema.features[0]!.impute = ' ';
    expect(studyPlanProblems(draftToPlan(d))).toEqual([
      `schema.features.0.impute: "age" needs a declared imputation value when missing is 'impute'`,
    ]);
  });

  it('release by default what the privacy mode protects, and keep a release the designer chose', () => {
    const d = validDraft();
    expect((draftToPlan(d) as TabularStudyPlan).release).toEqual({
      evaluation: { mode: 'exact', rounds: 'every' },
      trainingExamples: 'exact',
    });
    const dp = withPrivacyMode(d, 'dp-sgd');
    expect((draftToPlan(dp) as TabularStudyPlan).release).toEqual({
      evaluation: { mode: 'noisy', rounds: 'final', scoreBins: 4 },
      trainingExamples: 'none',
    });
    expect((draftToPlan(withPrivacyMode(dp, 'dp-fedavg')) as TabularStudyPlan).release).toEqual({
      evaluation: { mode: 'none' },
      trainingExamples: 'none',
    });
    // A designer's choice stays when the mode changes (and a contradiction is reported, not silently fixed).
    const chosen: PlanDraft = { ...dp, release: { ...dp.release, chosen: true } };
    const moved = withPrivacyMode(chosen, 'dp-fedavg');
    expect(moved.release).toEqual(chosen.release);
    expect(studyPlanProblems(draftToPlan(moved))).toEqual(
      expect.arrayContaining([expect.stringMatching(/^release\.evaluation: noisy evaluation .* needs a record-level/)]),
    );
  });

  it('mark an existing plan’s release as chosen only when it differs from its mode’s default', () => {
    const plan = draftToPlan(validDraft()) as TabularStudyPlan;
    expect(planToDraft(plan).release).toEqual(defaultReleaseDraft('none'));
    const custom = { ...plan, release: { evaluation: { mode: 'none' as const }, trainingExamples: 'none' as const } };
    expect(planToDraft(custom).release.chosen).toBe(true);
  });
});
