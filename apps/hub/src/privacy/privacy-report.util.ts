import { epsilonsAgree, finalEvaluationReleases, type PrivacyMechanism } from '@tessera/dp';
import { type PrivacySpend, type StudyPlan } from '@tessera/protocol';

/** Relative slack for comparing mechanism parameters that hub and agent derive with the same code from the plan. */
const PARAMETER_SLACK = 1e-9;

/** Training rounds, noisy evaluation releases and personalizations one task adds to a silo's spend. */
export interface ChargeCounts {
  trainingRounds: number;
  evaluationReleases: number;
  /** The plan's personalization under DP-SGD (0 or 1), charged with the final evaluation; absent: 0. */
  personalizations?: number;
}

/** True when a charge adds nothing. */
export function chargesNothing(c: ChargeCounts): boolean {
  return c.trainingRounds === 0 && c.evaluationReleases === 0 && (c.personalizations ?? 0) === 0;
}

/**
 * What a task charges a silo: a training task one training round (and, when the plan releases a noisy evaluation
 * every round, the evaluation of the round's input model it carries); an evaluation task one noisy release when the
 * plan has noisy evaluation. Exact evaluations are released without DP and charge nothing (reports list them).
 */
export function chargeOfTask(m: PrivacyMechanism, plan: StudyPlan, kind: 'train' | 'evaluate'): ChargeCounts {
  const noisy = m.evaluation !== null;
  if (kind === 'train') {
    return {
      trainingRounds: 1,
      evaluationReleases:
        noisy && plan.release.evaluation.mode === 'noisy' && plan.release.evaluation.rounds === 'every' ? 1 : 0,
    };
  }
  // The final evaluation: one release per evaluated model, and the personalization's DP-SGD steps when planned.
  return {
    trainingRounds: 0,
    evaluationReleases: noisy ? finalEvaluationReleases(plan) : 0,
    ...(m.personalizationSteps > 0 ? { personalizations: 1 } : {}),
  };
}

/**
 * Why a silo's privacy report must be refused, or null. A report stating a weaker mechanism than the approved plan
 * (less noise, a larger clipping norm, another sampling rate, step count, δ, mechanism or unit) means the silo
 * released something the stewards did not approve, or says it did: its update is not used.
 */
export function privacyReportRefusal(m: PrivacyMechanism, r: PrivacySpend): string | null {
  if (r.mechanism !== m.mechanism || r.unit !== m.unit) {
    return `privacy: the report states ${r.mechanism} per ${r.unit}; the plan's mechanism is ${m.mechanism} per ${m.unit}`;
  }
  if (r.noiseMultiplier < m.noiseMultiplier * (1 - PARAMETER_SLACK)) {
    return `privacy.noiseMultiplier: ${r.noiseMultiplier} is below the plan's ${m.noiseMultiplier} (less noise than the stewards approved)`;
  }
  if (r.clipNorm > m.clipNorm * (1 + PARAMETER_SLACK)) {
    return `privacy.clipNorm: ${r.clipNorm} is above the plan's ${m.clipNorm} (a larger sensitivity than the stewards approved)`;
  }
  if (!epsilonsAgree(r.samplingRate, m.samplingRate)) {
    return `privacy.samplingRate: ${r.samplingRate} is not the plan's ${m.samplingRate}`;
  }
  if (r.steps !== m.stepsPerRound) {
    return `privacy.steps: ${r.steps} steps per round is not the plan's ${m.stepsPerRound}`;
  }
  if (!epsilonsAgree(r.delta, m.delta)) return `privacy.delta: ${r.delta} is not the plan's ${m.delta}`;
  return null;
}

/**
 * Whether a silo's report tells the same story as the hub's charge: the same counts of training rounds and
 * evaluation releases, and the same ε (added and cumulative). A disagreement is flagged in the audit trail; the hub
 * keeps its own figure and takes the silo's counts when they are larger.
 */
export function reportAgrees(
  charge: ChargeCounts & { epsilonRound: number; epsilonCumulative: number },
  r: PrivacySpend,
): boolean {
  return (
    r.trainingRounds === charge.trainingRounds &&
    r.evaluationReleases === charge.evaluationReleases &&
    (r.personalizations ?? 0) === (charge.personalizations ?? 0) &&
    epsilonsAgree(r.epsilonRound, charge.epsilonRound) &&
    epsilonsAgree(r.epsilonCumulative, charge.epsilonCumulative)
  );
}
