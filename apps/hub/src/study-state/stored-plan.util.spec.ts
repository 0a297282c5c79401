import { describe, expect, it } from 'vitest';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import { assertCurrentPlan, invitedSilosOf, legacyMechanismOf, storedPlanOf } from './stored-plan.util';
import { priceStudy } from '../studies/study-privacy';

const SILOS = ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222'];

/** The previous release's shape of the same plan: no release section, standardisation and a seeded split. */
function legacyOf(plan: ReturnType<typeof heartDiseasePlan>): Record<string, unknown> {
  const { release: _release, ...rest } = plan;
  return {
    ...rest,
    schema: {
      features: plan.schema.features.map((f) => ({ name: f.name, type: f.type })),
      label: plan.schema.label,
      missing: 'drop-rows',
      split: { testFraction: 0.2, seed: 1, stratify: false },
      standardize: false,
    },
  };
}

describe('stored plans', () => {
  it('accepts a plan in the current format as is', () => {
    const plan = heartDiseasePlan(SILOS);
    expect(storedPlanOf(plan)).toEqual({ current: true, plan });
    expect(() => assertCurrentPlan({ name: 'x', plan }, 'start')).not.toThrow();
  });

  it('names where a plan of the earlier format departs from the current one', () => {
    const stored = storedPlanOf(legacyOf(heartDiseasePlan(SILOS)));
    expect(stored.current).toBe(false);
    const problems = stored.current ? [] : stored.problems;
    expect(problems.some((p) => p.startsWith('release: '))).toBe(true);
    expect(problems.some((p) => p.startsWith('schema') && p.includes('standardize'))).toBe(true);
  });

  it('refuses to act on a legacy plan with STUDY_STATE and the reason', () => {
    let thrown: unknown;
    try {
      assertCurrentPlan({ name: 'Old study', plan: legacyOf(heartDiseasePlan(SILOS)) }, 'start');
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(HubException);
    expect((thrown as HubException).code).toBe(HubErrorCode.STUDY_STATE);
    expect((thrown as HubException).message).toMatch(/^Study "Old study" cannot start: its plan predates/);
  });

  it('reads the invited silos of any stored plan, and none from a damaged one', () => {
    expect(invitedSilosOf(legacyOf(heartDiseasePlan(SILOS)))).toEqual(SILOS);
    expect(invitedSilosOf({ silos: 'not a list' })).toEqual([]);
    expect(invitedSilosOf(null)).toEqual([]);
  });

  it('takes the approved training mechanism of a legacy DP plan from its stored privacy cost', () => {
    const cost = priceStudy(
      heartDiseasePlan(SILOS, {
        privacy: {
          mode: 'dp-fedavg',
          unit: 'silo',
          targetEpsilon: 4,
          delta: 1e-5,
          clipNorm: 2,
          noiseMultiplier: 'derive',
        },
        release: { evaluation: { mode: 'none' }, trainingExamples: 'none' },
      }),
    );
    expect(cost).not.toBeNull();
    const m = legacyMechanismOf(cost);
    expect(m).toMatchObject({
      mechanism: 'dp-fedavg',
      unit: 'silo',
      noiseMultiplier: cost!.noiseMultiplier,
      clipNorm: 2,
      plannedEpsilon: cost!.epsilon,
      targetEpsilon: 4,
      evaluation: null,
    });
    expect(legacyMechanismOf(null)).toBeNull();
  });
});
