import { epsilonForNoise, noiseForEpsilon, PrivacyParameterError } from '@tessera/dp/accountant';
import { personalizationModels, type StudyPlan, type StudyPrivacyCostView } from '@tessera/protocol';

/**
 * How a DP plan spends its budget, in the accountant's terms (see libs/protocol privacy.ts, which the hub uses):
 * - dp-sgd (unit: one record): each local step samples records with probability q, so a round is
 *   localEpochs × round(1/q) steps and the study is rounds × that.
 * - dp-fedavg (unit: a silo): one Gaussian release per round over every participating silo, q = 1.
 */
export interface PrivacyMechanismShape {
  mode: 'dp-sgd' | 'dp-fedavg';
  rounds: number;
  localEpochs: number;
  /** dp-sgd only; ignored (q = 1) for dp-fedavg. */
  samplingRate?: number;
  delta: number;
}

export interface AccountingSteps {
  samplingRate: number;
  stepsPerRound: number;
  steps: number;
}

export function accountingSteps(shape: PrivacyMechanismShape): AccountingSteps {
  if (shape.mode === 'dp-fedavg') return { samplingRate: 1, stepsPerRound: 1, steps: shape.rounds };
  const q = shape.samplingRate ?? NaN;
  const stepsPerRound = shape.localEpochs * Math.max(1, Math.round(1 / q));
  return { samplingRate: q, stepsPerRound, steps: shape.rounds * stepsPerRound };
}

export type Calculation<T> = { ok: true; value: T } | { ok: false; message: string };

function attempt<T>(compute: () => T): Calculation<T> {
  try {
    return { ok: true, value: compute() };
  } catch (err) {
    if (err instanceof PrivacyParameterError || err instanceof RangeError || err instanceof TypeError) {
      return { ok: false, message: err.message };
    }
    throw err;
  }
}

/** The smallest noise multiplier σ (relative to the clipping norm) whose ε over the whole study is ≤ target. */
export function noiseForTarget(shape: PrivacyMechanismShape, targetEpsilon: number): Calculation<number> {
  const { samplingRate, steps } = accountingSteps(shape);
  return attempt(() => noiseForEpsilon({ targetEpsilon, samplingRate, steps, delta: shape.delta }).noiseMultiplier);
}

/** ε over the whole study for a given noise multiplier σ. */
export function epsilonForSigma(shape: PrivacyMechanismShape, noiseMultiplier: number): Calculation<number> {
  const { samplingRate, steps } = accountingSteps(shape);
  return attempt(() => epsilonForNoise({ noiseMultiplier, samplingRate, steps, delta: shape.delta }).epsilon);
}

/**
 * Noisy evaluation releases a plan allows: one per round plus the final model's ('every'), or the final model's only
 * ('final'): the count plannedEvaluationReleases (@tessera/dp study-privacy.ts) gives for a whole plan, here from the
 * two fields the designer is editing (a spec checks the two agree).
 */
export function evaluationReleaseCount(rounds: number, when: 'final' | 'every'): number {
  return when === 'every' ? rounds + 1 : 1;
}

/**
 * Standard deviation (in counts) of the discrete Gaussian noise on each bin of a noisy evaluation: the smallest σ
 * whose `releases` evaluation releases alone cost ε ≤ target at δ. Each release is one Gaussian mechanism of L2
 * sensitivity 1 (one test record moves one count by one), applied to every test record (q = 1): the calibration
 * privacyMechanismOf does in @tessera/dp, so the designer sees the noise the hub and the agents will derive.
 */
export function evaluationNoiseFor(targetEpsilon: number, delta: number, releases: number): Calculation<number> {
  return attempt(() => noiseForEpsilon({ targetEpsilon, samplingRate: 1, steps: releases, delta }).noiseMultiplier);
}

/** The noise of a plan's noisy evaluation, and who derived it. */
export interface EvaluationNoise {
  /** Standard deviation of the discrete Gaussian noise on each histogram count, in counts. */
  noiseStddev: number;
  /** Evaluation releases the plan allows (each one charged). */
  releases: number;
  /** ε of those releases alone at the plan's δ (≤ the target). */
  epsilon: number | null;
  /** 'hub': from the study's privacy cost as the hub derived it; 'console': computed here from the plan. */
  source: 'hub' | 'console';
}

/**
 * The noise a plan's noisy evaluation will carry, computed here from the plan with the hub's accountant (null when
 * the plan releases no noisy evaluation, which only DP-SGD plans can).
 */
export function plannedEvaluationNoise(plan: StudyPlan): Calculation<EvaluationNoise> | null {
  const e = plan.release.evaluation;
  const p = plan.privacy;
  if (e.mode !== 'noisy' || p.mode !== 'dp-sgd') return null;
  // With plan.personalization the final evaluation also releases each personal model's histogram.
  const releases = evaluationReleaseCount(plan.training.rounds, e.rounds) + personalizationModels(plan).length;
  const noise = evaluationNoiseFor(p.targetEpsilon, p.delta, releases);
  if (!noise.ok) return noise;
  const epsilon = attempt(
    () => epsilonForNoise({ noiseMultiplier: noise.value, samplingRate: 1, steps: releases, delta: p.delta }).epsilon,
  );
  return {
    ok: true,
    value: { noiseStddev: noise.value, releases, epsilon: epsilon.ok ? epsilon.value : null, source: 'console' },
  };
}

const isNumber = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

/**
 * The noisy evaluation's noise as the hub derived it, when the study's privacy cost carries it (an `evaluation`
 * object shaped like PrivacyMechanism.evaluation: noiseStddev, releases, plannedEpsilon); null when the hub does not
 * expose it. Read defensively: the view type does not declare the field on every hub version.
 */
export function hubEvaluationNoise(cost: StudyPrivacyCostView | null): EvaluationNoise | null {
  if (cost === null || !('evaluation' in cost)) return null;
  const e: unknown = cost.evaluation;
  if (typeof e !== 'object' || e === null) return null;
  const { noiseStddev, releases, plannedEpsilon, epsilon } = e as Record<string, unknown>;
  if (!isNumber(noiseStddev) || noiseStddev <= 0 || !isNumber(releases)) return null;
  const eps = isNumber(plannedEpsilon) ? plannedEpsilon : isNumber(epsilon) ? epsilon : null;
  return { noiseStddev, releases, epsilon: eps, source: 'hub' };
}

/** The noise to show for a study: the hub's when it exposes it, else the console's own derivation from the plan. */
export function studyEvaluationNoise(
  plan: StudyPlan,
  cost: StudyPrivacyCostView | null,
): Calculation<EvaluationNoise> | null {
  if (plan.release.evaluation.mode !== 'noisy') return null;
  const fromHub = hubEvaluationNoise(cost);
  return fromHub ? { ok: true, value: fromHub } : plannedEvaluationNoise(plan);
}
