import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chargedEpsilon, privacyMechanismOf } from '@tessera/dp';
import { heartDiseaseDataDirectory, selectBackend } from '@tessera/ml';
import { type StudyPlan } from '@tessera/protocol';
import { beforeAll, describe, expect, it } from 'vitest';
import { heartDiseaseAuditPlan, underNoisedPlan } from './audit-plan.util';
import { runPrivacyAudit, type PrivacyAuditResult } from './privacy-audit';
import type { CanaryKind } from './audit-canary.util';

// The fast (CI) version of the empirical privacy audit (docs/privacy.md, "Empirical audit"): the real task executor,
// real data file, ledger, release store and exact noise; only the hub is in memory. Few runs give a weak bound, which
// is enough for a regression check: ε_lb ≤ claimed ε on the worst-case neighbours, and the positive controls (an
// under-noised pipeline certified against the same claim) must come out ABOVE the claim, so the check can fail.
// Measured: 70 s for the whole file on the idle 2-core VM, 147 s at a load of 5–8 (docs/benchmarks.md, section 7).

const cleveland = () => readFileSync(join(heartDiseaseDataDirectory(), 'processed.cleveland.data'), 'utf8');

/** With N runs per world half certify: ε_lb can reach at most ln((1 − p)/p), p = 1 − 0.025^(2/N); 2.0 at N = 60. */
const RUNS = 60;
const CONTROL_RUNS = 60;
/** The evaluation release is cheaper to distinguish (no sampling): fewer runs, the same ceiling argument (1.6 at 40). */
const EVALUATION_RUNS = 40;

beforeAll(async () => {
  await selectBackend('cpu');
});

function audit(canary: CanaryKind, plan: StudyPlan, runsPerWorld: number, pipelinePlan?: StudyPlan) {
  return runPrivacyAudit({
    data: { text: cleveland(), name: 'processed.cleveland.data' },
    canary,
    runsPerWorld,
    plan,
    ...(pipelinePlan === undefined ? {} : { pipelinePlan }),
  });
}

function expectHonest(result: PrivacyAuditResult, plan: StudyPlan): void {
  const m = privacyMechanismOf(plan)!;
  expect(result.positiveControl).toBe(false);
  expect(result.claimedEpsilon).toBeLessThanOrEqual(m.targetEpsilon);
  expect(result.pipelineEpsilon).toBe(result.claimedEpsilon);
  expect(result.audit.counts.positives + result.audit.counts.negatives).toBe(result.runsPerWorld);
  // The regression check of issue 13: no certified ε above the claim.
  expect(result.audit.epsilonLowerBound).toBeLessThanOrEqual(result.claimedEpsilon);
}

describe('empirical privacy audit of the agent pipeline (CI version)', () => {
  // The demo's heart-disease plan with one round: q = 0.1, 50 steps, σ derived for ε = 1.
  const demo = heartDiseaseAuditPlan();
  // Full-batch DP gradient descent (q = 1, 5 steps): only the noise hides the canary, the audit's strongest setting.
  const fullBatch = heartDiseaseAuditPlan({ samplingRate: 1 });

  it.each(['duplicate', 'outlier'] as const)(
    'certifies no ε above the claim with the %s canary in training (demo plan, one round)',
    async (canary) => {
      const result = await audit(canary, demo, RUNS);
      expect(result.canary).toMatchObject({ kind: canary, split: 'train' });
      expect(result.release).toBe('training-update');
      // The claim is the plan's charged ε for one training round, recomputed here from the protocol.
      expect(result.claimedEpsilon).toBeCloseTo(chargedEpsilon(privacyMechanismOf(demo)!, 1, 0), 12);
      expect(result.claimedEpsilon).toBeGreaterThan(0.99);
      expectHonest(result, demo);
    },
  );

  it('certifies no ε above the claim for a held-out canary in the noisy evaluation release', async () => {
    const result = await audit('held-out', demo, EVALUATION_RUNS);
    expect(result.canary.split).toBe('test');
    expect(result.release).toBe('noisy-evaluation');
    expect(result.claimedEpsilon).toBeCloseTo(chargedEpsilon(privacyMechanismOf(demo)!, 0, 1), 12);
    expectHonest(result, demo);
  });

  it('certifies no ε above the claim with a duplicate under full-batch DP-SGD', async () => {
    expectHonest(await audit('duplicate', fullBatch, RUNS), fullBatch);
  });

  it('positive control: an under-noised training pipeline is certified ABOVE the claim it would report', async () => {
    const result = await audit('duplicate', fullBatch, CONTROL_RUNS, underNoisedPlan(fullBatch));
    expect(result.positiveControl).toBe(true);
    expect(result.claimedEpsilon).toBeCloseTo(chargedEpsilon(privacyMechanismOf(fullBatch)!, 1, 0), 12);
    expect(result.pipelineEpsilon).toBeGreaterThan(50);
    expect(result.audit.epsilonLowerBound).toBeGreaterThan(result.claimedEpsilon);
  });

  it('positive control: an under-noised evaluation release is certified ABOVE the claim', async () => {
    const result = await audit('held-out', demo, EVALUATION_RUNS, underNoisedPlan(demo));
    expect(result.positiveControl).toBe(true);
    expect(result.audit.epsilonLowerBound).toBeGreaterThan(result.claimedEpsilon);
  });
});
