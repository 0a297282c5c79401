import { epsilonForNoise, noiseForEpsilon, PrivacyParameterError, RDP_ACCOUNTANT_NAME } from '@tessera/dp/accountant';
import type { PrivacySpend } from './rounds';
import type { StudyPlan } from './study-plan';

/**
 * The exact mechanism a DP plan runs, everything an auditor needs to recompute its cost:
 * - 'dp-sgd' (Abadi et al. 2016), unit = one record: each local step samples records with probability q (Poisson),
 *   clips each record's gradient to L2 norm C and adds N(0, σ²C²) to the sum. Steps per round = local epochs ×
 *   round(1/q). The silo's update is private even against the hub.
 * - 'dp-fedavg' (McMahan et al. 2018), unit = a silo's whole dataset: each silo's update is clipped to C and the hub
 *   adds N(0, σ²C²) to their sum once per round (q = 1: every participating silo each round). Private against
 *   anyone who sees the models, not against the hub, which sees single updates.
 * σ ("noise multiplier") is always relative to C.
 */
export interface PrivacyMechanism {
  mechanism: 'dp-sgd' | 'dp-fedavg';
  unit: 'record' | 'silo';
  noiseMultiplier: number;
  clipNorm: number;
  samplingRate: number;
  stepsPerRound: number;
  rounds: number;
  delta: number;
  targetEpsilon: number;
  /** ε of the whole planned study (all rounds), by the accountant below. */
  plannedEpsilon: number;
  accountant: string;
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
 * The mechanism of a plan, with σ derived from the target ε for the whole study when the plan says 'derive'
 * (the smallest σ whose ε ≤ target), or checked against the target when σ is given. Null for plans without DP.
 * Hub and agent both call this: the agent never relies on the hub's arithmetic.
 */
export function privacyMechanismOf(plan: StudyPlan): PrivacyMechanism | null {
  const p = plan.privacy;
  if (p.mode === 'none') return null;
  const samplingRate = p.mode === 'dp-sgd' ? p.samplingRate : 1;
  const stepsPerRound = stepsPerRoundOf(plan);
  const steps = stepsPerRound * plan.training.rounds;
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
        `with noise multiplier ${noiseMultiplier} the planned ${plan.training.rounds} rounds (${steps} steps at sampling rate ${samplingRate}) cost ε = ${cost.epsilon.toPrecision(6)}, above the target ε = ${p.targetEpsilon}; raise the noise, lower the rounds, or use "derive"`,
      );
    }
    return {
      mechanism: p.mode,
      unit: p.unit,
      noiseMultiplier,
      clipNorm: p.clipNorm,
      samplingRate,
      stepsPerRound,
      rounds: plan.training.rounds,
      delta: p.delta,
      targetEpsilon: p.targetEpsilon,
      plannedEpsilon: cost.epsilon,
      accountant: RDP_ACCOUNTANT_NAME,
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

/** ε spent after `rounds` rounds of the mechanism (RDP composition of identical steps, converted at its δ). */
export function epsilonAfterRounds(m: PrivacyMechanism, rounds: number): number {
  if (rounds <= 0) return 0;
  return epsilonForNoise({
    noiseMultiplier: m.noiseMultiplier,
    samplingRate: m.samplingRate,
    steps: m.stepsPerRound * rounds,
    delta: m.delta,
  }).epsilon;
}

/** What a silo reports (and the hub recomputes) for its `roundsSpent`-th round of the study. */
export function privacySpendOf(m: PrivacyMechanism, roundsSpent: number): PrivacySpend {
  const cumulative = epsilonAfterRounds(m, roundsSpent);
  return {
    mechanism: m.mechanism,
    unit: m.unit,
    noiseMultiplier: m.noiseMultiplier,
    clipNorm: m.clipNorm,
    samplingRate: m.samplingRate,
    steps: m.stepsPerRound,
    delta: m.delta,
    epsilonRound: epsilonAfterRounds(m, 1),
    epsilonCumulative: cumulative,
    accountant: m.accountant,
  };
}

/** Relative difference above which a reported and a recomputed ε disagree. */
export const EPSILON_AGREEMENT = 1e-6;

export function epsilonsAgree(a: number, b: number): boolean {
  return Math.abs(a - b) <= EPSILON_AGREEMENT * Math.max(1, Math.abs(a), Math.abs(b));
}
