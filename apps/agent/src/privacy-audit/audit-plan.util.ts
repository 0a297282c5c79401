import { randomUUID } from 'node:crypto';
import { HEART_DISEASE_SCHEMA, StudyPlan } from '@tessera/protocol';
import { AgentError, AgentErrorCode } from '../agent.error';

/** The audit's default target ε: the demo's (`npm run demo`, apps/hub/src/cli/demo.ts). */
export const DEFAULT_AUDIT_EPSILON = 1;

/** The confidence of the certified lower bound on ε, unless the command says otherwise. */
export const DEFAULT_AUDIT_CONFIDENCE = 0.95;

/** The demo's Poisson sampling rate q: each record joins each step's batch with probability 0.1. */
export const DEMO_SAMPLING_RATE = 0.1;

export interface AuditPlanOptions {
  /** ε the one round is calibrated for (σ derived); default the demo's 1. */
  readonly targetEpsilon?: number;
  /**
   * q; default the demo's 0.1. With q = 1 (full-batch DP gradient descent, 5 steps of all records) nothing but the
   * noise hides the canary: the setting where an audit can come closest to the claim.
   */
  readonly samplingRate?: number;
}

/**
 * The demo's Fed-Heart-Disease plan under example-level DP-SGD (the same model, schema, local epochs, batch size,
 * learning rate, clipping norm C = 1, sampling rate q = 0.1, δ = 1e-5 and release as apps/hub/src/studies/
 * heart-disease-plan.ts with `defaultRelease`), but with ONE round: σ is derived so that this one round costs the
 * target ε, so each audit run is one round of the real pipeline at the full claimed ε. The agent must not import the
 * hub, so the plan is written here from the protocol's types; validated by the protocol's schema.
 */
export function heartDiseaseAuditPlan(options: AuditPlanOptions = {}): StudyPlan {
  const { targetEpsilon = DEFAULT_AUDIT_EPSILON, samplingRate = DEMO_SAMPLING_RATE } = options;
  if (!(Number.isFinite(targetEpsilon) && targetEpsilon > 0 && targetEpsilon <= 100)) {
    throw new AgentError(AgentErrorCode.USAGE, `the target ε must be a number in (0, 100]; got ${targetEpsilon}`);
  }
  if (!(Number.isFinite(samplingRate) && samplingRate > 0 && samplingRate <= 1)) {
    throw new AgentError(AgentErrorCode.USAGE, `the sampling rate must be in (0, 1]; got ${samplingRate}`);
  }
  return StudyPlan.parse({
    name: 'Fed-Heart-Disease (privacy audit)',
    purpose: 'Empirical privacy audit: one round of the demo plan, run many times with and without a canary record.',
    model: { kind: 'logistic-regression' },
    schema: structuredClone(HEART_DISEASE_SCHEMA),
    training: {
      rounds: 1,
      localEpochs: 5,
      batchSize: 16,
      learningRate: 0.05,
      algorithm: 'fedavg',
      serverOptimizer: { kind: 'fedadam', learningRate: 0.1, beta1: 0.9, beta2: 0.99, tau: 0.001 },
      initSeed: 42,
    },
    privacy: {
      mode: 'dp-sgd',
      unit: 'record',
      targetEpsilon,
      delta: 1e-5,
      clipNorm: 1,
      noiseMultiplier: 'derive',
      samplingRate,
    },
    participation: { minSilosPerRound: 1, roundDeadlineSeconds: 60, maxRoundRetries: 1, onSiloFailure: 'continue' },
    release: { evaluation: { mode: 'noisy', rounds: 'final', scoreBins: 4 }, trainingExamples: 'none' },
    silos: [randomUUID()],
  });
}

/** ε of the positive control's pipeline: the schema's largest target, so σ is far below what the audited plan needs. */
export const POSITIVE_CONTROL_EPSILON = 100;

/**
 * The positive control's pipeline: the audited plan with its noise calibrated for ε = 100 instead of the plan's
 * target (σ derived for 100). Run through the same real agent code and certified against the AUDITED plan's claim,
 * it stands for an implementation that adds far less noise than it charges for; a harness that cannot certify an ε
 * above the claim for it has no power, and its "pass" on the real pipeline would mean nothing.
 */
export function underNoisedPlan(plan: StudyPlan, targetEpsilon = POSITIVE_CONTROL_EPSILON): StudyPlan {
  if (plan.privacy.mode !== 'dp-sgd') {
    throw new AgentError(AgentErrorCode.USAGE, 'the positive control needs a DP-SGD plan');
  }
  return StudyPlan.parse({
    ...plan,
    privacy: { ...plan.privacy, targetEpsilon, noiseMultiplier: 'derive' },
  });
}
