import { epsilonForNoise, noiseForEpsilon, PrivacyParameterError } from '@tessera/dp/accountant';

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
