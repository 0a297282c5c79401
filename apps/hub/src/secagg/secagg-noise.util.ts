import { distributedNoisePlan, type PrivacyMechanism } from '@tessera/dp';
import type { StudyPlan } from '@tessera/protocol';

/**
 * The trace of a securely aggregated round's noise, for the audit trail and the compliance report: with distributed
 * noise (privacy.noise 'distributed'), what each silo added (it computes the same from the plan and the round's
 * configuration) and how many shares the sum holds against the t the accountant charges for; null without it.
 */
export function distributedNoiseTrace(
  plan: StudyPlan,
  mechanism: PrivacyMechanism | null,
  round: { scale: number; threshold: number; vectorLength: number; survivors: readonly string[] },
): Record<string, unknown> | null {
  if (plan.privacy.mode !== 'dp-fedavg' || plan.privacy.noise !== 'distributed' || !mechanism) return null;
  const noise = distributedNoisePlan({
    clipNorm: mechanism.clipNorm,
    scale: round.scale,
    dimension: round.vectorLength,
    shares: round.threshold,
    noiseMultiplier: mechanism.noiseMultiplier,
  });
  return {
    addedBy: 'silos',
    ...noise,
    // The sum holds one share per survivor; the accountant charged for the worst case of t.
    sharesInSum: round.survivors.length,
    sharesAccounted: round.threshold,
  };
}
