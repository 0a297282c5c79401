import { describe, expect, it } from 'vitest';
import {
  describePlan,
  planHash,
  releasedWithoutDp,
  StudyPlan,
  studyPlanProblems,
  type AggregationPlan,
  type PrivacyPlan,
} from './study-plan';
import { planForTest } from './study-plan.test-util';

const NO_DP: PrivacyPlan = { mode: 'none' };
const EXACT = { evaluation: { mode: 'exact', rounds: 'every' }, trainingExamples: 'exact' } as const;
const DP_FEDAVG: PrivacyPlan = {
  mode: 'dp-fedavg',
  unit: 'silo',
  targetEpsilon: 4,
  delta: 1e-5,
  clipNorm: 1,
  noiseMultiplier: 'derive',
};
const NO_RELEASE = { evaluation: { mode: 'none' }, trainingExamples: 'none' } as const;

/** A plan without DP of `silos` invited silos, every one needed per round unless told otherwise. */
function robustPlan(aggregation: AggregationPlan | undefined, silos = 5, minSilosPerRound = silos): StudyPlan {
  return planForTest({
    privacy: NO_DP,
    release: EXACT,
    silos,
    minSilosPerRound,
    ...(aggregation ? { aggregation } : {}),
  });
}

describe('study plan: the aggregation choice', () => {
  it.each<[string, AggregationPlan]>([
    ['FedAvg named explicitly', { aggregator: { kind: 'fedavg' } }],
    ['the coordinate median', { aggregator: { kind: 'coordinate-median' } }],
    ['a trimmed mean', { aggregator: { kind: 'trimmed-mean', trimFraction: 0.2 } }],
    ['Krum with f = 1 of 5', { aggregator: { kind: 'krum', byzantine: 1 } }],
    ['Multi-Krum selecting 3', { aggregator: { kind: 'krum', byzantine: 1, selected: 3 } }],
    ['the geometric median', { aggregator: { kind: 'geometric-median', tolerance: 1e-5, maxIterations: 50 } }],
    [
      'a median with a median-multiple norm bound',
      { aggregator: { kind: 'coordinate-median' }, normBound: { mode: 'median-multiple', multiplier: 3 } },
    ],
    ['FedAvg with a fixed norm bound', { aggregator: { kind: 'fedavg' }, normBound: { mode: 'fixed', maxNorm: 2 } }],
  ])('accepts %s', (_name, aggregation) => {
    expect(studyPlanProblems(robustPlan(aggregation))).toEqual([]);
  });

  it.each<[string, unknown, RegExp]>([
    ['an unknown aggregator', { aggregator: { kind: 'bulyan' } }, /^aggregation\.aggregator\.kind: /],
    [
      'a trim fraction of one half',
      { aggregator: { kind: 'trimmed-mean', trimFraction: 0.5 } },
      /^aggregation\.aggregator\.trimFraction: /,
    ],
    ['a negative f', { aggregator: { kind: 'krum', byzantine: -1 } }, /^aggregation\.aggregator\.byzantine: /],
    ['a fractional f', { aggregator: { kind: 'krum', byzantine: 1.5 } }, /^aggregation\.aggregator\.byzantine: /],
    [
      'zero iterations',
      { aggregator: { kind: 'geometric-median', maxIterations: 0 } },
      /^aggregation\.aggregator\.maxIterations: /,
    ],
    [
      'a norm bound below the median',
      { aggregator: { kind: 'fedavg' }, normBound: { mode: 'median-multiple', multiplier: 0.5 } },
      /^aggregation\.normBound\.multiplier: /,
    ],
    [
      'a zero fixed bound',
      { aggregator: { kind: 'fedavg' }, normBound: { mode: 'fixed', maxNorm: 0 } },
      /^aggregation\.normBound\.maxNorm: /,
    ],
    ['an unknown key', { aggregator: { kind: 'fedavg' }, weights: 'equal' }, /^aggregation: .*weights/],
  ])('refuses %s, naming the field', (_name, aggregation, problem) => {
    const plan = { ...robustPlan(undefined), aggregation };
    const problems = studyPlanProblems(plan);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(problem);
  });

  it('refuses Krum unless every round that can close has n > 2f + 2 updates', () => {
    const krum: AggregationPlan = { aggregator: { kind: 'krum', byzantine: 1 } };
    // 6 silos invited, but a round may close with 4: 4 ≤ 2·1 + 2.
    expect(studyPlanProblems(robustPlan(krum, 6, 4))).toEqual([
      'aggregation.aggregator.byzantine: Krum tolerating f = 1 Byzantine updates needs n > 2f + 2 = 4 updates in ' +
        'every round, and a round may close with participation.minSilosPerRound = 4; raise minSilosPerRound to at ' +
        'least 5 (with as many silos invited) or lower f',
    ]);
    expect(studyPlanProblems(robustPlan(krum, 6, 5))).toEqual([]);
    expect(studyPlanProblems(robustPlan({ aggregator: { kind: 'krum', byzantine: 0 } }, 3, 3))).toEqual([]);
    expect(studyPlanProblems(robustPlan({ aggregator: { kind: 'krum', byzantine: 0 } }, 2, 2))).toHaveLength(1);
  });

  it('refuses Multi-Krum selecting more than n − f updates', () => {
    const problems = studyPlanProblems(robustPlan({ aggregator: { kind: 'krum', byzantine: 1, selected: 5 } }, 5));
    expect(problems).toEqual([
      'aggregation.aggregator.selected: Multi-Krum averages at most n − f = 4 updates in a round of 5 ' +
        '(participation.minSilosPerRound = 5), so that the average can be made of honest updates only; got 5',
    ]);
  });

  it('refuses a trimmed mean that trims nothing in the smallest round', () => {
    const trimmed: AggregationPlan = { aggregator: { kind: 'trimmed-mean', trimFraction: 0.1 } };
    expect(studyPlanProblems(robustPlan(trimmed, 8, 8))).toEqual([
      'aggregation.aggregator.trimFraction: β = 0.1 trims ⌊β·n⌋ = 0 values from each end in a round of 8 updates ' +
        '(participation.minSilosPerRound = 8), which is a plain mean; choose β ≥ 0.125 or more silos per round',
    ]);
    expect(studyPlanProblems(robustPlan(trimmed, 10, 10))).toEqual([]);
  });

  it('refuses medians and a median-multiple bound when a round may have fewer than 3 updates', () => {
    for (const kind of ['coordinate-median', 'geometric-median'] as const) {
      const problems = studyPlanProblems(robustPlan({ aggregator: { kind } }, 4, 2));
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^aggregation\.aggregator\.kind: the median of 2 update\(s\) is their mean/);
    }
    const bound: AggregationPlan = {
      aggregator: { kind: 'fedavg' },
      normBound: { mode: 'median-multiple', multiplier: 2 },
    };
    expect(studyPlanProblems(robustPlan(bound, 4, 2))[0]).toMatch(/^aggregation\.normBound\.mode: /);
    expect(studyPlanProblems(robustPlan(bound, 4, 3))).toEqual([]);
  });
});

describe('study plan: screening', () => {
  it('accepts a threshold with or without exclusion, and refuses a non-positive threshold', () => {
    for (const exclude of [true, false]) {
      expect(
        studyPlanProblems(planForTest({ silos: 4, minSilosPerRound: 3, screening: { threshold: 3.5, exclude } })),
      ).toEqual([]);
    }
    const problems = studyPlanProblems(
      planForTest({ silos: 4, minSilosPerRound: 3, screening: { threshold: 0, exclude: true } }),
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^screening\.threshold: /);
  });

  it('needs an explicit exclude choice', () => {
    const plan = { ...planForTest({ silos: 4, minSilosPerRound: 3 }), screening: { threshold: 3.5 } };
    expect(studyPlanProblems(plan)).toEqual([expect.stringMatching(/^screening\.exclude: /)]);
  });

  it('refuses screening when a round may close with fewer than 3 updates', () => {
    expect(
      studyPlanProblems(planForTest({ silos: 4, minSilosPerRound: 2, screening: { threshold: 3.5, exclude: false } })),
    ).toEqual([
      "screening: screening compares each update with the round's median and flags nothing in a round of fewer than 3 " +
        'updates; a round may close with participation.minSilosPerRound = 2',
    ]);
  });
});

describe('study plan: robust aggregation and differential privacy', () => {
  const dpFedAvg = (extra: Partial<StudyPlan>): StudyPlan => ({
    ...planForTest({ privacy: DP_FEDAVG, release: NO_RELEASE, silos: 5, minSilosPerRound: 5 }),
    ...extra,
  });

  it('refuses every robust aggregator with DP-FedAvg, whose noise is calibrated to a sum', () => {
    for (const aggregator of [
      { kind: 'coordinate-median' },
      { kind: 'trimmed-mean', trimFraction: 0.2 },
      { kind: 'krum', byzantine: 1 },
      { kind: 'geometric-median' },
    ] as const) {
      const problems = studyPlanProblems(dpFedAvg({ aggregation: { aggregator } }));
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(
        /^aggregation\.aggregator\.kind: .* is not a sum, and DP-FedAvg's noise is calibrated/,
      );
    }
  });

  it('allows DP-FedAvg with FedAvg and a fixed bound, and refuses a median-multiple bound and exclusion', () => {
    expect(
      studyPlanProblems(
        dpFedAvg({ aggregation: { aggregator: { kind: 'fedavg' }, normBound: { mode: 'fixed', maxNorm: 0.5 } } }),
      ),
    ).toEqual([]);
    expect(
      studyPlanProblems(
        dpFedAvg({
          aggregation: { aggregator: { kind: 'fedavg' }, normBound: { mode: 'median-multiple', multiplier: 2 } },
        }),
      ),
    ).toEqual([expect.stringMatching(/^aggregation\.normBound\.mode: with dp-fedavg/)]);
    expect(studyPlanProblems(dpFedAvg({ screening: { threshold: 3.5, exclude: true } }))).toEqual([
      expect.stringMatching(/^screening\.exclude: with dp-fedavg/),
    ]);
    expect(studyPlanProblems(dpFedAvg({ screening: { threshold: 3.5, exclude: false } }))).toEqual([]);
  });

  it('allows every robust aggregator, bound and exclusion with record-level DP (post-processing)', () => {
    const plan = planForTest({
      silos: 5,
      minSilosPerRound: 5,
      aggregation: {
        aggregator: { kind: 'krum', byzantine: 1 },
        normBound: { mode: 'median-multiple', multiplier: 3 },
      },
      screening: { threshold: 3.5, exclude: true },
    });
    expect(plan.privacy.mode).toBe('dp-sgd');
    expect(studyPlanProblems(plan)).toEqual([]);
  });

  it('lists the screening statistics as released without DP under DP-FedAvg only', () => {
    const screened = dpFedAvg({ screening: { threshold: 3.5, exclude: false } });
    expect(releasedWithoutDp(screened)).toEqual([
      expect.stringMatching(/clipped model update, to the hub/),
      expect.stringMatching(/^the screening statistics of the silo's clipped update/),
    ]);
    const recordLevel = planForTest({ silos: 4, minSilosPerRound: 3, screening: { threshold: 3.5, exclude: true } });
    expect(releasedWithoutDp(recordLevel)).toEqual([]);
  });
});

describe('study plan: the steward reads the aggregation', () => {
  const line = (plan: StudyPlan, key: string) => describePlan(plan).find((l) => l.startsWith(`${key}:`));

  it('states FedAvg and no screening for a plan without the options', () => {
    expect(line(planForTest(), 'aggregation')).toBe('aggregation:  FedAvg (the mean of the updates, equal weights)');
    expect(line(planForTest({ privacy: NO_DP, release: EXACT }), 'aggregation')).toMatch(
      /weighted by the released record counts/,
    );
    expect(line(planForTest(), 'screening')).toBe('screening:    none');
  });

  it('states the robust aggregator, its parameters, the bound and the screening rule', () => {
    const plan = planForTest({
      silos: 5,
      minSilosPerRound: 5,
      aggregation: {
        aggregator: { kind: 'krum', byzantine: 1, selected: 3 },
        normBound: { mode: 'median-multiple', multiplier: 3 },
      },
      screening: { threshold: 4, exclude: true },
    });
    expect(line(plan, 'aggregation')).toBe(
      'aggregation:  Multi-Krum, f = 1, the mean of the 3 best-scored updates (tolerates f arbitrary updates; ' +
        "unweighted); every update first scaled down to L2 norm ≤ 3 × the round's median update norm",
    );
    expect(line(plan, 'screening')).toBe(
      "screening:    each update's L2 norm and cosines to the round's aggregate and to the previous global update; " +
        "a norm more than 4 robust deviations above the round's median, or a cosine more than 4 below it " +
        '(deviations of at least 0.35 in log norm and 0.45 in cosine, the spread honest hospitals show): ' +
        'flagged in the audit trail and left out of the aggregate',
    );
    const floored = robustPlan({ aggregator: { kind: 'fedavg' } });
    floored.screening = { threshold: 3.5, exclude: false, cosineScaleFloor: 0.2 };
    expect(line(floored, 'screening')).toMatch(
      / at least 0\.35 in log norm and 0\.2 in cosine, .*: flagged in the audit trail$/,
    );
    const trimmed = robustPlan({ aggregator: { kind: 'trimmed-mean', trimFraction: 0.2 } });
    expect(line(trimmed, 'aggregation')).toMatch(/^aggregation: {2}trimmed mean, β = 0\.2 /);
  });
});

describe('planHash: adding the aggregation options changed no existing hash', () => {
  // The fixture below and its hash are pinned in study-plan.spec.ts from before the options existed (a DP-SGD plan,
  // version 1). Parsing adds no key (the new keys are optional, without defaults), so the plan a hub stores and
  // hashes is byte for byte the one it was before, and the pinned hash still verifies.
  const studyId = '7f3c2b1a-9e8d-4c6b-a5f4-3e2d1c0b9a87';
  const siloIds = ['0b0f7c1e-3a52-4d8e-9f61-2c4b8a7d5e10', '5d2e9a47-8c13-4b6f-a0d9-71e3c5b28f46'];
  const PINNED = '95f798db4cf9b01fba87e7a6a4b94b83bedb17720dcaf583fc2b1c3352a3938b';

  it('keeps the hash of a plan written before the options, after it is parsed by the current schema', () => {
    const before = planForTest({ siloIds });
    expect(Object.keys(before)).not.toContain('aggregation');
    expect(planHash(studyId, 1, before)).toBe(PINNED);
    const parsed = StudyPlan.parse(JSON.parse(JSON.stringify(before)));
    expect(Object.keys(parsed)).not.toContain('aggregation');
    expect(Object.keys(parsed)).not.toContain('screening');
    expect(parsed).toEqual(before);
    expect(planHash(studyId, 1, parsed)).toBe(PINNED);
  });

  it('gives a plan that names an aggregator or screening a hash of its own', () => {
    const base = planForTest({ siloIds });
    const named = planHash(studyId, 1, { ...base, aggregation: { aggregator: { kind: 'fedavg' } } });
    const screened = planHash(studyId, 1, { ...base, screening: { threshold: 3.5, exclude: false } });
    expect(new Set([PINNED, named, screened]).size).toBe(3);
  });
});
