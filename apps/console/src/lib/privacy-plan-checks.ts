import { PrivacyParameterError, PrivacyPlanError, privacyMechanismOf } from '@tessera/dp/accountant';
import type { StudyPlan } from '@tessera/protocol';

/** Calibrations already made, by the parts of the plan that decide them (calibration takes a moment). */
const priced = new Map<string, string[]>();
const PRICED_KEPT = 64;

/**
 * Whether the hub can price the plan's privacy, as "path: message" problems (empty: it can). The same function the
 * hub runs before any steward approves (privacyMechanismOf, @tessera/dp), so the wizard refuses an impossible
 * target at the privacy step, with the hub's reason, instead of only when the plan is sent. Only for a plan that
 * passed studyPlanProblems.
 */
export function privacyPlanProblems(plan: StudyPlan): string[] {
  if (plan.privacy.mode === 'none') return [];
  const key = JSON.stringify([plan.privacy, plan.training, plan.release]);
  const known = priced.get(key);
  if (known) return known;
  let problems: string[] = [];
  try {
    privacyMechanismOf(plan);
  } catch (err) {
    if (!(err instanceof PrivacyPlanError || err instanceof PrivacyParameterError || err instanceof RangeError)) {
      throw err;
    }
    // σ fixed by the designer: the noise is what falls short; derived: the target cannot be met.
    const path = plan.privacy.noiseMultiplier === 'derive' ? 'privacy.targetEpsilon' : 'privacy.noiseMultiplier';
    problems = [`${path}: ${err.message}`];
  }
  if (priced.size >= PRICED_KEPT) priced.delete(priced.keys().next().value!);
  priced.set(key, problems);
  return problems;
}

/**
 * A δ that protects little, in words (null: no comment). δ is the probability that the ε guarantee fails outright;
 * it must stay well below 1/n for n protected units, or a mechanism that publishes one unit in n outright satisfies
 * it. The units are the invited silos for DP-FedAvg; for DP-SGD they are the records of a silo, which the plan does not
 * state, so the warning gives 1/δ for the designer to compare with the smallest silo.
 */
export function deltaWarning(mode: 'dp-sgd' | 'dp-fedavg', delta: number, invitedSilos: number): string | null {
  if (!Number.isFinite(delta) || delta <= 0 || delta >= 1) return null;
  if (delta >= 0.1) {
    return `δ = ${delta} is no meaningful guarantee: the privacy promise may fail outright with probability ${delta}. Use a δ well below 1 / the number of protected units (typically 1e-5 or less).`;
  }
  const oneIn = Math.round(1 / delta);
  if (mode === 'dp-fedavg' && invitedSilos > 0 && delta >= 1 / invitedSilos) {
    return `δ = ${delta} is at least 1 / ${invitedSilos} invited silos: a mechanism that exposes one silo's data outright would meet it. Use a δ well below 1 / ${invitedSilos}.`;
  }
  if (mode === 'dp-sgd' && delta >= 1e-3) {
    return `δ = ${delta} is 1 / ${oneIn.toLocaleString('en')}: a silo with ${oneIn.toLocaleString('en')} records or fewer would have no real guarantee (one record in 1/δ may be exposed outright). Use a δ well below 1 / the records of the smallest silo.`;
  }
  return null;
}
