import { privacyMechanismOf } from '@tessera/dp';
import { type StudyPlan } from '@tessera/protocol';
import type { PrivacyCost } from '../study-state/study.entity';

/**
 * The privacy price of a whole study, computed before approval so stewards approve the exact mechanism and the ε
 * it will cost (libs/protocol privacyMechanismOf: σ derived from the target, or checked against it). Plans without
 * differential privacy return null, which the console and the agent state plainly as "no differential privacy".
 * Throws PrivacyPlanError with the reason when no noise meets the target within the plan.
 */
export function priceStudy(plan: StudyPlan): PrivacyCost | null {
  const m = privacyMechanismOf(plan);
  if (!m) return null;
  return {
    mechanism: m.mechanism,
    unit: m.unit,
    noiseMultiplier: m.noiseMultiplier,
    clipNorm: m.clipNorm,
    samplingRate: m.samplingRate,
    stepsPerRound: m.stepsPerRound,
    rounds: m.rounds,
    epsilon: m.plannedEpsilon,
    targetEpsilon: m.targetEpsilon,
    delta: m.delta,
    accountant: m.accountant,
  };
}
