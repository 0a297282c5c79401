import { describe, expect, it } from 'vitest';
import {
  describePlan,
  planHash,
  releasedWithoutDp,
  secureAggregationCoordinateBound,
  studyPlanProblems,
  type PrivacyPlan,
  type SecureAggregationPlan,
  type StudyPlan,
} from './study-plan';
import { planForTest } from './study-plan.test-util';

const NO_DP: PrivacyPlan = { mode: 'none' };
const NO_RELEASE = { evaluation: { mode: 'none' }, trainingExamples: 'none' } as const;
const SECAGG: SecureAggregationPlan = { threshold: 3, modulusBits: 32, clipNorm: 1 };

/** A plan without DP and with secure aggregation over `silos` silos, every one of them needed per round. */
function securePlan(
  secureAggregation: SecureAggregationPlan = SECAGG,
  more: Parameters<typeof planForTest>[0] = {},
): StudyPlan {
  const silos = more.silos ?? 4;
  return planForTest({
    privacy: NO_DP,
    release: NO_RELEASE,
    silos,
    minSilosPerRound: silos,
    secureAggregation,
    ...more,
  });
}

describe('study plan: secureAggregation', () => {
  it('accepts the complete graph with every silo needed, and a SecAgg+ neighbourhood', () => {
    expect(studyPlanProblems(securePlan())).toEqual([]);
    expect(studyPlanProblems(securePlan({ ...SECAGG, neighbourCount: 3 }))).toEqual([]);
    expect(
      studyPlanProblems(securePlan({ threshold: 4, neighbourCount: 4, modulusBits: 24, clipNorm: 5 }, { silos: 7 })),
    ).toEqual([]);
  });

  it('is part of the plan hash a steward approves', () => {
    const plain = securePlan();
    const { secureAggregation: _omitted, ...withoutBlock } = plain;
    const studyId = '6f1c1bb4-4b7a-4ff5-9d8e-2a3e3f0c0d11';
    expect(planHash(studyId, 1, withoutBlock)).not.toBe(planHash(studyId, 1, plain));
    expect(planHash(studyId, 1, securePlan({ ...SECAGG, threshold: 2 }, { siloIds: plain.silos }))).not.toBe(
      planHash(studyId, 1, plain),
    );
  });

  it('refuses unknown keys and out-of-range fields by their path', () => {
    const plan = { ...securePlan(), secureAggregation: { ...SECAGG, scale: 1000 } };
    expect(studyPlanProblems(plan).join('\n')).toMatch(/secureAggregation: Unrecognized key.*scale/);
    expect(studyPlanProblems(securePlan({ ...SECAGG, modulusBits: 40 }))[0]).toMatch(
      /^secureAggregation\.modulusBits:/,
    );
    expect(studyPlanProblems(securePlan({ ...SECAGG, threshold: 1 }))[0]).toMatch(/^secureAggregation\.threshold:/);
    expect(studyPlanProblems(securePlan({ ...SECAGG, clipNorm: 0 }))[0]).toMatch(/^secureAggregation\.clipNorm:/);
  });

  it('refuses fewer than three silos', () => {
    const problems = studyPlanProblems(securePlan({ threshold: 2, modulusBits: 32, clipNorm: 1 }, { silos: 2 }));
    expect(problems).toContain(
      "secureAggregation: needs at least 3 invited silos (with 2, a silo learns the others' update from the sum and its own)",
    );
  });

  it('refuses a threshold the roster cannot meet, and a minimum per round below t + 1', () => {
    expect(studyPlanProblems(securePlan({ ...SECAGG, threshold: 4 }))).toEqual([
      'secureAggregation.threshold: t = 4 needs t + 1 = 5 surviving silos in a round, more than the 4 invited',
    ]);
    expect(studyPlanProblems(securePlan(SECAGG, { silos: 5, minSilosPerRound: 3 }))).toEqual([
      'participation.minSilosPerRound: with secure aggregation threshold t = 3 a round can only be unmasked with at ' +
        'least t + 1 = 4 surviving silos; raise minSilosPerRound to 4 or lower t',
    ]);
  });

  it('refuses a neighbourhood larger than the roster or smaller than the threshold', () => {
    expect(studyPlanProblems(securePlan({ ...SECAGG, neighbourCount: 4 }))).toEqual([
      'secureAggregation.neighbourCount: 4 exceeds the 3 other invited silos (n − 1 is the complete graph)',
    ]);
    expect(studyPlanProblems(securePlan({ ...SECAGG, neighbourCount: 2 }))).toEqual([
      'secureAggregation.threshold: t = 3 exceeds the 2 neighbours a silo shares its secrets with; no secret could be rebuilt',
    ]);
  });

  it('refuses a modulus the sum of the roster would wrap at one step per clip norm', () => {
    // 2^7 − 1 = 127 < 200 silos: not even one integer step per silo and coordinate fits.
    const problems = studyPlanProblems(
      securePlan({ threshold: 150, modulusBits: 8, clipNorm: 1 }, { silos: 200, minSilosPerRound: 151 }),
    );
    expect(problems).toContain(
      'secureAggregation.modulusBits: the sum of 200 updates cannot fit 2^8 even at one integer step per clip norm; raise modulusBits',
    );
  });

  it('computes the per-silo coordinate bound as n·B ≤ 2^(k−1) − 1', () => {
    expect(secureAggregationCoordinateBound(4, 32)).toBe(Math.floor((2 ** 31 - 1) / 4));
    expect(secureAggregationCoordinateBound(127, 8)).toBe(1);
    expect(secureAggregationCoordinateBound(128, 8)).toBe(0);
    for (const [n, k] of [
      [3, 8],
      [16, 16],
      [64, 32],
    ] as const) {
      const b = secureAggregationCoordinateBound(n, k);
      expect(n * b).toBeLessThanOrEqual(2 ** (k - 1) - 1);
      expect(n * (b + 1)).toBeGreaterThan(2 ** (k - 1) - 1);
    }
  });

  it('refuses everything that needs an individual update: robust aggregation, norm bounds, screening, DP-FedAvg, record counts', () => {
    const problems = studyPlanProblems(
      securePlan(SECAGG, {
        aggregation: { aggregator: { kind: 'coordinate-median' }, normBound: { mode: 'fixed', maxNorm: 3 } },
        screening: { threshold: 3.5, exclude: false },
        release: { evaluation: { mode: 'none' }, trainingExamples: 'exact' },
      }),
    );
    expect(problems.map((p) => p.split(':')[0])).toEqual([
      'aggregation.aggregator.kind',
      'aggregation.normBound',
      'screening',
      'release.trainingExamples',
    ]);
    const dpFedAvg = studyPlanProblems(
      securePlan(SECAGG, {
        privacy: {
          mode: 'dp-fedavg',
          unit: 'silo',
          targetEpsilon: 4,
          delta: 1e-5,
          clipNorm: 1,
          noiseMultiplier: 2,
        },
      }),
    );
    expect(dpFedAvg).toHaveLength(1);
    expect(dpFedAvg[0]).toMatch(/^privacy\.noise: dp-fedavg with central noise clips and noises individual updates/);
  });

  it('accepts silo-level DP with distributed noise, shows it the steward, and refuses it without secure aggregation', () => {
    const distributed: PrivacyPlan = {
      mode: 'dp-fedavg',
      unit: 'silo',
      targetEpsilon: 1,
      delta: 1e-5,
      clipNorm: 1,
      noiseMultiplier: 'derive',
      noise: 'distributed',
    };
    const plan = securePlan(SECAGG, { privacy: distributed });
    expect(studyPlanProblems(plan)).toEqual([]);
    // Nothing leaves a silo outside the guarantee: its update leaves masked, with its noise share in it.
    expect(releasedWithoutDp(plan)).toEqual([]);
    expect(describePlan(plan).find((l) => l.startsWith('privacy:'))).toMatch(
      /^privacy: +distributed DP-FedAvg \(unit: the whole silo; each silo adds its share of discrete Gaussian noise/,
    );
    const { secureAggregation: _dropped, ...withoutSecAgg } = plan;
    expect(studyPlanProblems(withoutSecAgg)).toEqual([
      expect.stringMatching(/^privacy\.noise: distributed noise needs secureAggregation/),
    ]);
    expect(studyPlanProblems(securePlan({ ...SECAGG, clipNorm: 2 }, { privacy: distributed }))).toEqual([
      expect.stringMatching(/^privacy\.clipNorm: with distributed noise each silo clips its update once.*got 1\)$/),
    ]);
    expect(studyPlanProblems({ ...plan, privacy: { ...distributed, noise: 'local' } })[0]).toMatch(/^privacy\.noise:/);
  });

  it('accepts DP-SGD (the update is private before it is masked) and refuses per-round evaluation releases', () => {
    const plan = planForTest({
      silos: 4,
      minSilosPerRound: 4,
      release: { evaluation: { mode: 'exact', rounds: 'every' }, trainingExamples: 'none' },
      aggregation: { aggregator: { kind: 'fedavg' } },
      secureAggregation: SECAGG,
    });
    expect(plan.privacy.mode).toBe('dp-sgd');
    expect(studyPlanProblems(plan).map((p) => p.split(':')[0])).toEqual(['release.evaluation.rounds']);
    expect(studyPlanProblems({ ...plan, release: { ...plan.release, evaluation: { mode: 'none' } } })).toEqual([]);
    const final = {
      ...plan,
      privacy: NO_DP,
      release: { evaluation: { mode: 'exact', rounds: 'final' }, trainingExamples: 'none' },
    };
    expect(studyPlanProblems(final)).toEqual([]);
  });

  it('shows the steward the protocol, its threshold, clip, modulus and equal weights', () => {
    const lines = describePlan(securePlan({ ...SECAGG, neighbourCount: 2, threshold: 2 }));
    const line = lines.find((l) => l.startsWith('secure agg.:'));
    expect(line).toBe(
      "secure agg.:  SecAgg+ — the hub sees only the sum of the updates, never one silo's; each silo pairs with 2 " +
        'neighbours (SecAgg+); threshold t = 2 (a round needs t + 1 = 3 surviving silos); each update clipped to L2 ' +
        `norm 1 and quantised to integers mod 2^32 (step ${Number((1 / Math.floor((2 ** 31 - 1) / 4)).toPrecision(3))} ` +
        'with 4 silos); equal weights',
    );
    expect(describePlan(planForTest()).some((l) => l.startsWith('secure agg.:'))).toBe(false);
    expect(releasedWithoutDp(securePlan())).toEqual([
      "the sum of the silos' model updates, in which the hub never sees this silo's own (no differential privacy in this study)",
    ]);
  });
});
