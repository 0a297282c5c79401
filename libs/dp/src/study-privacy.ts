// A study plan's privacy mechanism and what it costs, by this library's accountant: domain logic over the wire
// contract's plan, shared by the hub (charging), the agent (refusing more than the plan) and the console.
import { localBaselineEpochs, personalizationModels, type PrivacySpend, type StudyPlan } from '@tessera/protocol';
import { epsilonForNoise, noiseForEpsilon } from './privacy-calibration';
import { PrivacyParameterError } from './privacy-parameter.exception';
import { RDP_ACCOUNTANT_NAME } from './rdp-accountant';

/**
 * The exact mechanism a DP plan runs, everything an auditor needs to recompute its cost:
 * - 'dp-sgd' (Abadi et al. 2016), unit = one record: each local step samples records with probability q (Poisson),
 *   clips each record's gradient to L2 norm C and adds N(0, σ²C²) to the sum. Steps per round = local epochs ×
 *   round(1/q). The silo's update is private even against the hub.
 * - 'dp-fedavg' (McMahan et al. 2018), unit = a silo's whole dataset: each silo's update is clipped to C and the hub
 *   adds N(0, σ²C²) to their sum once per round (q = 1: every participating silo each round). Private against
 *   anyone who sees the models, not against the hub, which sees single updates.
 * σ ("noise multiplier") is always relative to C.
 *
 * With noisy evaluation (record-level plans), each evaluation release is a Gaussian mechanism of sensitivity 1 on
 * the test records' score histograms, with noise standard deviation `evaluation.noiseStddev` counts. Test records
 * never train (the split depends on each record alone), so a record is in exactly one of the two parts and the
 * study's charged ε is max(ε of training, ε of evaluation): parallel composition.
 */
export interface PrivacyMechanism {
  mechanism: 'dp-sgd' | 'dp-fedavg';
  unit: 'record' | 'silo';
  noiseMultiplier: number;
  clipNorm: number;
  samplingRate: number;
  stepsPerRound: number;
  rounds: number;
  /**
   * DP-SGD steps of the plan's personalization (fine-tuning epochs, plus the local-only baseline's rounds × local
   * epochs), charged once with the final evaluation and composed with the training rounds' steps (the same training
   * records, the same σ, C and q); 0 without personalization.
   */
  personalizationSteps: number;
  delta: number;
  targetEpsilon: number;
  /** ε of the whole planned study (all rounds and planned evaluation releases), by the accountant below. */
  plannedEpsilon: number;
  accountant: string;
  /** Noisy evaluation: noise (counts) and the number of releases the plan allows; null without it. */
  evaluation: { noiseStddev: number; releases: number; plannedEpsilon: number } | null;
}

export class PrivacyPlanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PrivacyPlanError';
  }
}

function stepsPerRoundOf(plan: StudyPlan): number {
  const p = plan.privacy;
  if (p.mode === 'dp-sgd') return plan.training.localEpochs * Math.max(1, Math.round(1 / p.samplingRate));
  return 1;
}

/**
 * Evaluation releases a plan allows: one per round plus the final model's, or the final model's only; with
 * personalization, the final evaluation also releases the personalized model's (and the local baseline's).
 */
export function plannedEvaluationReleases(plan: StudyPlan): number {
  const e = plan.release.evaluation;
  if (e.mode === 'none') return 0;
  return (e.rounds === 'every' ? plan.training.rounds + 1 : 1) + personalizationModels(plan).length;
}

/** Evaluation releases of the final evaluation task: the global model's, then each personalization model's. */
export function finalEvaluationReleases(plan: StudyPlan): number {
  return plan.release.evaluation.mode === 'none' ? 0 : 1 + personalizationModels(plan).length;
}

/**
 * DP-SGD steps of a plan's personalization under record-level DP: the fine-tuning's epochs and, with a local
 * baseline, its rounds × localEpochs, each epoch round(1/q) steps like a training epoch. 0 otherwise.
 */
export function personalizationStepsOf(plan: StudyPlan): number {
  const p = plan.personalization;
  if (!p || plan.privacy.mode !== 'dp-sgd') return 0;
  const epochs = p.epochs + (p.localBaseline ? localBaselineEpochs(plan) : 0);
  return epochs * Math.max(1, Math.round(1 / plan.privacy.samplingRate));
}

/** Mechanisms already derived, by the plan's JSON text (a σ search costs tens of milliseconds; agents ask each task). */
const derived = new Map<string, PrivacyMechanism | null>();
const DERIVED_KEPT = 32;

/**
 * The mechanism of a plan, with σ derived from the target ε for the whole study when the plan says 'derive'
 * (the smallest σ whose ε ≤ target), or checked against the target when σ is given. Null for plans without DP.
 * The noisy evaluation's noise is always derived: the smallest σ whose evaluation releases alone cost ≤ target.
 * Hub and agent both call this: the agent never relies on the hub's arithmetic.
 *
 * A pure function of the plan, so a result is kept for the same plan text and returned frozen (the σ search is the
 * costly part: tens of milliseconds, and the agent needs the mechanism for every task). A refused plan is never
 * kept: it throws again each time.
 */
export function privacyMechanismOf(plan: StudyPlan): PrivacyMechanism | null {
  const key = JSON.stringify(plan);
  const kept = derived.get(key);
  if (kept !== undefined) return kept;
  const mechanism = deriveMechanism(plan);
  if (mechanism) {
    if (mechanism.evaluation) Object.freeze(mechanism.evaluation);
    Object.freeze(mechanism);
  }
  if (derived.size >= DERIVED_KEPT) derived.delete(derived.keys().next().value as string);
  derived.set(key, mechanism);
  return mechanism;
}

function deriveMechanism(plan: StudyPlan): PrivacyMechanism | null {
  const p = plan.privacy;
  if (p.mode === 'none') return null;
  const samplingRate = p.mode === 'dp-sgd' ? p.samplingRate : 1;
  const stepsPerRound = stepsPerRoundOf(plan);
  const personalizationSteps = personalizationStepsOf(plan);
  const steps = stepsPerRound * plan.training.rounds + personalizationSteps;
  try {
    let noiseMultiplier: number;
    if (p.noiseMultiplier === 'derive') {
      noiseMultiplier = noiseForEpsilon({
        targetEpsilon: p.targetEpsilon,
        samplingRate,
        steps,
        delta: p.delta,
      }).noiseMultiplier;
    } else {
      noiseMultiplier = p.noiseMultiplier;
    }
    const cost = epsilonForNoise({ noiseMultiplier, samplingRate, steps, delta: p.delta });
    if (cost.epsilon > p.targetEpsilon) {
      throw new PrivacyPlanError(
        `with noise multiplier ${noiseMultiplier} the planned ${plan.training.rounds} rounds${personalizationSteps > 0 ? ` and personalization` : ''} (${steps} steps at sampling rate ${samplingRate}) cost ε = ${cost.epsilon.toPrecision(6)}, above the target ε = ${p.targetEpsilon}; raise the noise, lower the rounds, or use "derive"`,
      );
    }
    let evaluation: PrivacyMechanism['evaluation'] = null;
    const releases = plannedEvaluationReleases(plan);
    if (plan.release.evaluation.mode === 'noisy' && releases > 0) {
      const noiseStddev = noiseForEpsilon({
        targetEpsilon: p.targetEpsilon,
        samplingRate: 1,
        steps: releases,
        delta: p.delta,
      }).noiseMultiplier;
      const evalCost = epsilonForNoise({
        noiseMultiplier: noiseStddev,
        samplingRate: 1,
        steps: releases,
        delta: p.delta,
      });
      evaluation = { noiseStddev, releases, plannedEpsilon: evalCost.epsilon };
    }
    return {
      mechanism: p.mode,
      unit: p.unit,
      noiseMultiplier,
      clipNorm: p.clipNorm,
      samplingRate,
      stepsPerRound,
      rounds: plan.training.rounds,
      personalizationSteps,
      delta: p.delta,
      targetEpsilon: p.targetEpsilon,
      plannedEpsilon: Math.max(cost.epsilon, evaluation?.plannedEpsilon ?? 0),
      accountant: RDP_ACCOUNTANT_NAME,
      evaluation,
    };
  } catch (err) {
    if (err instanceof PrivacyParameterError) {
      throw new PrivacyPlanError(
        `no noise multiplier meets target ε = ${p.targetEpsilon} at δ = ${p.delta} within the plan: ${err.message}`,
      );
    }
    throw err;
  }
}

/**
 * ε of `rounds` training rounds of the mechanism and, when `personalizations` is 1, the personalization's steps (RDP
 * composition of identical steps, converted at its δ).
 */
export function epsilonAfterRounds(m: PrivacyMechanism, rounds: number, personalizations = 0): number {
  const steps = m.stepsPerRound * Math.max(0, rounds) + m.personalizationSteps * Math.max(0, personalizations);
  if (steps <= 0) return 0;
  return epsilonForNoise({
    noiseMultiplier: m.noiseMultiplier,
    samplingRate: m.samplingRate,
    steps,
    delta: m.delta,
  }).epsilon;
}

/** ε of `releases` noisy evaluation releases (0 without noisy evaluation). */
export function epsilonAfterEvaluations(m: PrivacyMechanism, releases: number): number {
  if (releases <= 0 || m.evaluation === null) return 0;
  return epsilonForNoise({
    noiseMultiplier: m.evaluation.noiseStddev,
    samplingRate: 1,
    steps: releases,
    delta: m.delta,
  }).epsilon;
}

/** The ε charged for a study after these releases: max of the training and evaluation parts (disjoint records). */
export function chargedEpsilon(
  m: PrivacyMechanism,
  trainingRounds: number,
  evaluationReleases: number,
  personalizations = 0,
): number {
  return Math.max(
    epsilonAfterRounds(m, trainingRounds, personalizations),
    epsilonAfterEvaluations(m, evaluationReleases),
  );
}

/**
 * What a silo reports (and the hub recomputes) once it has been charged for `trainingRounds` training rounds and
 * `evaluationReleases` noisy evaluations of the study, when the latest charge added `added`.
 */
export function privacySpendOf(
  m: PrivacyMechanism,
  trainingRounds: number,
  evaluationReleases: number,
  added: { trainingRounds: number; evaluationReleases: number; personalizations?: number } = {
    trainingRounds: 1,
    evaluationReleases: 0,
  },
  personalizations = 0,
): PrivacySpend {
  const cumulative = chargedEpsilon(m, trainingRounds, evaluationReleases, personalizations);
  const before = chargedEpsilon(
    m,
    trainingRounds - added.trainingRounds,
    evaluationReleases - added.evaluationReleases,
    personalizations - (added.personalizations ?? 0),
  );
  return {
    mechanism: m.mechanism,
    unit: m.unit,
    noiseMultiplier: m.noiseMultiplier,
    clipNorm: m.clipNorm,
    samplingRate: m.samplingRate,
    steps: m.stepsPerRound,
    delta: m.delta,
    trainingRounds,
    evaluationReleases,
    // Only when the plan personalizes under DP: every other plan's spend keeps its bytes.
    ...(m.personalizationSteps > 0 ? { personalizations } : {}),
    epsilonRound: cumulative - before,
    epsilonCumulative: cumulative,
    accountant: m.accountant,
  };
}

/**
 * Why one more charge would break the approved plan (null when it may go on): more training rounds or evaluation
 * releases than the plan has, or a charged ε above the plan's target. The agent refuses such work whatever the hub
 * asks; the hub never asks for it.
 */
export function planLimitRefusal(
  m: PrivacyMechanism,
  after: { trainingRounds: number; evaluationReleases: number; personalizations?: number },
): string | null {
  if (after.trainingRounds > m.rounds) {
    return `the approved plan has ${m.rounds} training rounds; this would be training round ${after.trainingRounds} on this silo's data`;
  }
  const allowedEvaluations = m.evaluation?.releases ?? 0;
  if (after.evaluationReleases > allowedEvaluations) {
    return `the approved plan allows ${allowedEvaluations} noisy evaluation releases; this would be release ${after.evaluationReleases}`;
  }
  const personalizations = after.personalizations ?? 0;
  if (personalizations > (m.personalizationSteps > 0 ? 1 : 0)) {
    return m.personalizationSteps > 0
      ? 'the approved plan personalizes once, at the final evaluation; this would be a second personalization'
      : 'the approved plan has no personalization under differential privacy to charge';
  }
  const epsilon = chargedEpsilon(m, after.trainingRounds, after.evaluationReleases, personalizations);
  if (epsilon > m.targetEpsilon) {
    return `this would bring the study's charged ε to ${epsilon.toPrecision(6)}, above the approved target ε = ${m.targetEpsilon}`;
  }
  return null;
}

/** Relative difference above which a reported and a recomputed ε disagree. */
export const EPSILON_AGREEMENT = 1e-6;

export function epsilonsAgree(a: number, b: number): boolean {
  return Math.abs(a - b) <= EPSILON_AGREEMENT * Math.max(1, Math.abs(a), Math.abs(b));
}
