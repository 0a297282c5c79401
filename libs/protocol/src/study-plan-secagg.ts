import { z } from 'zod';
import type { StudyPlan } from './study-plan';

/*
 * The plan's `secureAggregation` block (docs/secure-aggregation.md, "In a study plan"): the parameters of the SecAgg+
 * protocol of @tessera/secagg that a steward consents to, and the cross-field rules that refuse a plan the protocol
 * cannot honour. The contract layer depends on nothing of ours, so the no-wrap arithmetic of @tessera/secagg
 * (n·⌈C·s⌉ ≤ 2^(k−1) − 1) is restated here; the hub derives each round's scale with secagg's maxSafeScale.
 */

/** Fewest silos secure aggregation runs with: with two, each learns the other's update from the sum and its own. */
export const MIN_SECURE_AGGREGATION_SILOS = 3;

/** Shamir sharing over GF(2^8) gives at most 255 shares per secret (@tessera/secagg MAX_PARTICIPANTS = 256). */
export const MAX_SECURE_AGGREGATION_SILOS = 256;

export const SecureAggregationPlan = z
  .object({
    /**
     * Shamir threshold t: a dropped silo's secrets are rebuilt from t of its neighbours' shares and hidden from t − 1
     * colluders. With the complete graph a round needs at least t + 1 surviving silos.
     */
    threshold: z.number().int().min(2).max(255),
    /** Neighbours per silo (SecAgg+ degree k); absent: the complete graph, k = n − 1 for a round of n silos. */
    neighbourCount: z.number().int().min(2).max(255).optional(),
    /** Updates are quantised to integers and summed modulo 2^modulusBits; 32 costs the size of a float32 upload. */
    modulusBits: z.number().int().min(8).max(32),
    /** L2 norm C every silo clips its update to before quantisation, in the model's parameter units. */
    clipNorm: z.number().finite().positive().max(1e6),
  })
  .strict();
export type SecureAggregationPlan = z.infer<typeof SecureAggregationPlan>;

/**
 * The largest per-silo coordinate bound B = ⌈C·s⌉ for which the sum of n quantised inputs cannot wrap modulo 2^k
 * (n·B ≤ 2^(k−1) − 1); 0 when even B = 1 wraps. The finest scale is then s = B / C, one step = C / B.
 */
export function secureAggregationCoordinateBound(participantCount: number, modulusBits: number): number {
  return Math.max(0, Math.floor((2 ** (modulusBits - 1) - 1) / participantCount));
}

/** Problems of a plan's `secureAggregation` block against the rest of the plan, each naming its field path. */
export function secureAggregationProblems(plan: StudyPlan): string[] {
  const sa = plan.secureAggregation;
  if (!sa) {
    return plan.privacy.mode === 'dp-fedavg' && plan.privacy.noise === 'distributed'
      ? [
          `privacy.noise: distributed noise needs secureAggregation: without it the hub would see each silo's update ` +
            `with only that silo's share of the noise; add a secureAggregation block or choose 'central'`,
        ]
      : [];
  }
  const out: string[] = [];
  const n = plan.silos.length;
  const min = plan.participation.minSilosPerRound;
  if (n < MIN_SECURE_AGGREGATION_SILOS) {
    out.push(
      `secureAggregation: needs at least ${MIN_SECURE_AGGREGATION_SILOS} invited silos (with ${n}, a silo learns the ` +
        `others' update from the sum and its own)`,
    );
  }
  if (n > MAX_SECURE_AGGREGATION_SILOS) {
    out.push(`secureAggregation: at most ${MAX_SECURE_AGGREGATION_SILOS} silos (Shamir shares over GF(2^8)); got ${n}`);
  }
  const k = sa.neighbourCount;
  if (k !== undefined && k > n - 1) {
    out.push(
      `secureAggregation.neighbourCount: ${k} exceeds the ${n - 1} other invited silos (n − 1 is the complete graph)`,
    );
  }
  if (k !== undefined && sa.threshold > k) {
    out.push(
      `secureAggregation.threshold: t = ${sa.threshold} exceeds the ${k} neighbours a silo shares its secrets with; no secret could be rebuilt`,
    );
  }
  if (sa.threshold + 1 > n) {
    out.push(
      `secureAggregation.threshold: t = ${sa.threshold} needs t + 1 = ${sa.threshold + 1} surviving silos in a round, ` +
        `more than the ${n} invited`,
    );
  } else if (min < sa.threshold + 1) {
    out.push(
      `participation.minSilosPerRound: with secure aggregation threshold t = ${sa.threshold} a round can only be ` +
        `unmasked with at least t + 1 = ${sa.threshold + 1} surviving silos; raise minSilosPerRound to ${sa.threshold + 1} or lower t`,
    );
  }
  if (n >= 1 && secureAggregationCoordinateBound(n, sa.modulusBits) < 1) {
    out.push(
      `secureAggregation.modulusBits: the sum of ${n} updates cannot fit 2^${sa.modulusBits} even at one integer step ` +
        `per clip norm; raise modulusBits`,
    );
  }
  out.push(...incompatibilities(plan));
  return out;
}

/** What the hub would need an individual update for, which secure aggregation never shows it. */
function incompatibilities(plan: StudyPlan): string[] {
  const out: string[] = [];
  const aggregator = plan.aggregation?.aggregator;
  if (aggregator && aggregator.kind !== 'fedavg') {
    out.push(
      `aggregation.aggregator.kind: ${aggregator.kind} needs every individual update, and under secure aggregation ` +
        `the hub sees only their sum; choose fedavg (each silo clips to secureAggregation.clipNorm), or drop secureAggregation`,
    );
  }
  if (plan.aggregation?.normBound) {
    out.push(
      `aggregation.normBound: the hub cannot bound updates it cannot see under secure aggregation; each silo clips its ` +
        `own to secureAggregation.clipNorm instead`,
    );
  }
  if (plan.screening) {
    out.push(
      `screening: screening reads every individual update, which the hub never sees under secure aggregation; remove ` +
        `screening or secureAggregation`,
    );
  }
  if (plan.release.evaluation.mode !== 'none' && plan.release.evaluation.rounds === 'every') {
    out.push(
      `release.evaluation.rounds: the evaluation of every round travels with the silo's update, which under secure ` +
        `aggregation the hub never receives; choose 'final' (the final model is evaluated after the last round)`,
    );
  }
  if (plan.privacy.mode === 'dp-fedavg' && plan.privacy.noise !== 'distributed') {
    out.push(
      `privacy.noise: dp-fedavg with central noise clips and noises individual updates at the hub, which secure ` +
        `aggregation hides from it; set privacy.noise to 'distributed' (each silo adds its share of the noise before ` +
        `masking), or use dp-sgd or none`,
    );
  }
  if (
    plan.privacy.mode === 'dp-fedavg' &&
    plan.privacy.noise === 'distributed' &&
    plan.privacy.clipNorm !== plan.secureAggregation?.clipNorm
  ) {
    out.push(
      `privacy.clipNorm: with distributed noise each silo clips its update once, to secureAggregation.clipNorm ` +
        `(${plan.secureAggregation?.clipNorm}), and the noise is sized for that norm; set privacy.clipNorm to the same ` +
        `value (got ${plan.privacy.clipNorm})`,
    );
  }
  if (plan.release.trainingExamples === 'exact') {
    out.push(
      `release.trainingExamples: a secure sum is unweighted, so the released record counts could not weight FedAvg; ` +
        `secure aggregation averages with equal weights: choose 'none'`,
    );
  }
  return out;
}

/** The plan's secure aggregation in words, for the steward (`tessera-agent studies show`, the console). */
export function describeSecureAggregation(plan: StudyPlan): string {
  const sa = plan.secureAggregation;
  if (!sa) return "none: the hub receives each silo's update";
  const n = plan.silos.length;
  const graph =
    sa.neighbourCount === undefined
      ? 'every silo pairs with every other (complete graph)'
      : `each silo pairs with ${sa.neighbourCount} neighbours (SecAgg+)`;
  const bound = secureAggregationCoordinateBound(n, sa.modulusBits);
  const step = bound >= 1 ? sa.clipNorm / bound : Number.NaN;
  return (
    `SecAgg+ — the hub sees only the sum of the updates, never one silo's; ${graph}; threshold t = ${sa.threshold} ` +
    `(a round needs t + 1 = ${sa.threshold + 1} surviving silos); each update clipped to L2 norm ${sa.clipNorm} and ` +
    `quantised to integers mod 2^${sa.modulusBits} (step ${fmt(step)} with ${n} silos); equal weights`
  );
}

const fmt = (x: number): string => Number(x.toPrecision(3)).toString();
