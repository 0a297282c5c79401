import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AgentErrorCode } from '../agent.error';
import { buildPlan, buildStudy, heartDiseaseFeatureSchema } from '../testing/study.test-util';
import { textContaining } from '../testing/matchers.test-util';
import { parsePolicy, policyVerdict, type ApprovalPolicy } from './approval-policy';

const heartColumns = [...heartDiseaseFeatureSchema().features.map((f) => f.name), 'num'];

function policy(overrides: Partial<ApprovalPolicy['autoApprove']> = {}): ApprovalPolicy {
  return {
    autoApprove: {
      models: ['logistic-regression', 'mlp'],
      allowedColumns: heartColumns,
      maxRounds: 10,
      privacyRequired: false,
      maxEpsilon: 8,
      ...overrides,
    },
  };
}

const dpSgd = (targetEpsilon: number) =>
  ({
    mode: 'dp-sgd',
    unit: 'record',
    targetEpsilon,
    delta: 1e-5,
    clipNorm: 1,
    noiseMultiplier: 1.1,
    samplingRate: 0.1,
  }) as const;

describe('policyVerdict', () => {
  it('approves a plan within every limit', () => {
    expect(policyVerdict(policy(), buildStudy(buildPlan()))).toEqual({ approve: true, reasons: [] });
  });

  it('names every breached limit at once: model, columns, rounds', () => {
    const verdict = policyVerdict(
      policy({
        models: ['logistic-regression'],
        allowedColumns: heartColumns.filter((c) => c !== 'chol'),
        maxRounds: 2,
      }),
      buildStudy(buildPlan({ model: { kind: 'mlp', hiddenLayers: [8], activation: 'relu' }, training: { rounds: 3 } })),
    );
    expect(verdict.approve).toBe(false);
    expect(verdict.reasons).toEqual([
      'model mlp is not among the allowed models (logistic-regression)',
      'columns not allowed by the policy: chol',
      "3 rounds exceed the policy's maximum of 2",
    ]);
  });

  it('checks the label column as well as the features', () => {
    const verdict = policyVerdict(
      policy({ allowedColumns: heartColumns.filter((c) => c !== 'num') }),
      buildStudy(buildPlan()),
    );
    expect(verdict.reasons).toEqual(['columns not allowed by the policy: num']);
  });

  it('refuses a plan without DP when the policy requires privacy', () => {
    const verdict = policyVerdict(policy({ privacyRequired: true }), buildStudy(buildPlan()));
    expect(verdict).toEqual({
      approve: false,
      reasons: ['the plan has no differential privacy, which the policy requires'],
    });
  });

  it("caps ε by the plan's target and by the hub's derived cost, whichever is larger", () => {
    expect(policyVerdict(policy({ privacyRequired: true }), buildStudy(buildPlan({ privacy: dpSgd(8) }))).approve).toBe(
      true,
    );
    expect(policyVerdict(policy(), buildStudy(buildPlan({ privacy: dpSgd(9) }))).reasons).toEqual([
      "ε = 9 exceeds the policy's maximum of 8",
    ]);
    const derived = buildStudy(buildPlan({ privacy: dpSgd(4) }), {
      privacyCost: {
        mechanism: 'dp-sgd',
        unit: 'record',
        noiseMultiplier: 0.5,
        clipNorm: 1,
        samplingRate: 0.1,
        stepsPerRound: 10,
        rounds: 5,
        epsilon: 12.5,
        targetEpsilon: 4,
        delta: 1e-5,
        accountant: 'rdp',
      },
    });
    expect(policyVerdict(policy(), derived).reasons).toEqual(["ε = 12.5 exceeds the policy's maximum of 8"]);
  });

  it('never approves a plan that uses a column outside the allowed list (property)', () => {
    fc.assert(
      fc.property(fc.subarray(heartColumns, { minLength: 1 }), (removed) => {
        const allowed = heartColumns.filter((c) => !removed.includes(c));
        const verdict = policyVerdict(
          policy({ allowedColumns: allowed.length > 0 ? allowed : ['x'] }),
          buildStudy(buildPlan()),
        );
        return !verdict.approve && verdict.reasons.some((r) => removed.every((c) => r.includes(c)));
      }),
      { numRuns: 50 },
    );
  });
});

describe('parsePolicy', () => {
  const valid = JSON.stringify(policy());

  it('accepts a complete policy', () => {
    expect(parsePolicy(valid, 'p.json')).toEqual(policy());
  });

  it('names the missing or wrong field and the file', () => {
    const { maxRounds: _dropped, ...rest } = policy().autoApprove;
    expect(() => parsePolicy(JSON.stringify({ autoApprove: rest }), 'p.json')).toThrow(
      /p\.json.*autoApprove\.maxRounds/,
    );
    expect(() =>
      parsePolicy(JSON.stringify({ autoApprove: { ...policy().autoApprove, models: ['random-forest'] } }), 'p.json'),
    ).toThrow(/autoApprove\.models\.0/);
    expect(() =>
      parsePolicy(JSON.stringify({ autoApprove: { ...policy().autoApprove, maxEpsilon: -1 } }), 'p.json'),
    ).toThrow(/autoApprove\.maxEpsilon/);
  });

  it('refuses unknown fields (a typo must not silently loosen the policy) and non-JSON', () => {
    const typo = { autoApprove: { ...policy().autoApprove, maxRound: 3 } };
    expect(() => parsePolicy(JSON.stringify(typo), 'p.json')).toThrow(/autoApprove.*maxRound/);
    try {
      parsePolicy('{ not json', 'p.json');
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({ code: AgentErrorCode.POLICY_INVALID, message: textContaining('not JSON') });
    }
  });
});
