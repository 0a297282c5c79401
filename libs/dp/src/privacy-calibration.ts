// Pricing and calibration on top of the RDP accountant: epsilon for a noise multiplier, and the smallest noise
// multiplier for a target epsilon. Pure functions; the hub's privacy ledger and the console call studyPrivacyCost.

import {
  assertDelta,
  assertEpsilon,
  assertNoiseMultiplier,
  assertSamplingRate,
  assertSteps,
  composeRdp,
  epsilonFromRdp,
  type FractionalOrderSeries,
  RDP_ACCOUNTANT_NAME,
  resolveOrders,
  type SampledGaussianEvent,
} from './rdp-accountant';
import { PrivacyParameterError, PrivacyParameterErrorCode } from './privacy-parameter.exception';

/** Upper end of the calibration search: a noise multiplier above this is no sane training configuration. */
export const MAX_CALIBRATED_NOISE_MULTIPLIER = 1e4;
/** Lower end of the calibration search; if even this meets the target, it is returned. */
export const MIN_CALIBRATED_NOISE_MULTIPLIER = 1e-3;
/** Calibration stops once the bracket around the smallest feasible noise multiplier is this narrow (relative). */
export const CALIBRATION_RELATIVE_TOLERANCE = 1e-10;

export interface PrivacyCostQuery {
  /** Noise stddev divided by the clipping norm; > 0. */
  readonly noiseMultiplier: number;
  /** Poisson sampling probability q in [0, 1]. */
  readonly samplingRate: number;
  /** Number of mechanism invocations (DP-SGD steps); a positive integer. */
  readonly steps: number;
  /** Target delta in (0, 1). */
  readonly delta: number;
  /** RDP orders; defaults to DEFAULT_RDP_ORDERS. */
  readonly orders?: readonly number[];
  /** See FractionalOrderSeries; defaults to `exact`. */
  readonly fractionalOrderSeries?: FractionalOrderSeries;
}

export interface PrivacyCost {
  readonly epsilon: number;
  readonly bestOrder: number;
  readonly accountant: typeof RDP_ACCOUNTANT_NAME;
}

export interface NoiseCalibrationQuery {
  /** The epsilon the whole run must not exceed; > 0. */
  readonly targetEpsilon: number;
  readonly samplingRate: number;
  readonly steps: number;
  readonly delta: number;
  readonly orders?: readonly number[];
  readonly fractionalOrderSeries?: FractionalOrderSeries;
}

export interface NoiseCalibration extends PrivacyCost {
  /** The smallest noise multiplier (within CALIBRATION_RELATIVE_TOLERANCE) whose epsilon is <= targetEpsilon. */
  readonly noiseMultiplier: number;
}

/**
 * Epsilon of a list of heterogeneous sampled-Gaussian events at `delta`: RDP composition (Mironov 2017, Prop. 1) and
 * the Balle et al. 2020 (Theorem 21) conversion, minimised over the order grid.
 */
export function epsilonForEvents(
  events: readonly SampledGaussianEvent[],
  delta: number,
  options: { readonly orders?: readonly number[]; readonly fractionalOrderSeries?: FractionalOrderSeries } = {},
): PrivacyCost {
  assertDelta(delta);
  const curve = composeRdp(events, options);
  const { epsilon, bestOrder } = epsilonFromRdp(curve.orders, curve.rdp, delta);
  return { epsilon, bestOrder, accountant: RDP_ACCOUNTANT_NAME };
}

/**
 * Epsilon spent by `steps` steps of DP-SGD with Poisson sampling rate q and noise multiplier sigma, at `delta`
 * (Mironov, Talwar, Zhang 2019; Balle et al. 2020 Theorem 21).
 */
export function epsilonForNoise(query: PrivacyCostQuery): PrivacyCost {
  assertNoiseMultiplier(query.noiseMultiplier);
  assertSamplingRate(query.samplingRate);
  assertSteps(query.steps);
  assertDelta(query.delta);
  return epsilonForEvents(
    [{ noiseMultiplier: query.noiseMultiplier, samplingRate: query.samplingRate, steps: query.steps }],
    query.delta,
    { orders: query.orders, fractionalOrderSeries: query.fractionalOrderSeries },
  );
}

/**
 * The price of a whole study in (epsilon, delta), for the hub's ledger and the console. Same arithmetic as
 * epsilonForNoise; kept as the one named entry point so every caller prices a study the same way.
 */
export function studyPrivacyCost(query: PrivacyCostQuery): PrivacyCost {
  return epsilonForNoise(query);
}

/**
 * The smallest noise multiplier whose epsilon at (samplingRate, steps, delta) does not exceed targetEpsilon, found by
 * bisection (epsilon is non-increasing in sigma: more noise is post-processing of less). The returned multiplier is
 * always on the feasible side: epsilonForNoise(result) <= targetEpsilon. Searches
 * [MIN_CALIBRATED_NOISE_MULTIPLIER, MAX_CALIBRATED_NOISE_MULTIPLIER] and throws TargetUnreachable outside it.
 */
export function noiseForEpsilon(query: NoiseCalibrationQuery): NoiseCalibration {
  assertEpsilon(query.targetEpsilon, 'targetEpsilon');
  assertSamplingRate(query.samplingRate);
  if (query.samplingRate === 0) {
    throw new PrivacyParameterError(
      PrivacyParameterErrorCode.InvalidSamplingRate,
      'samplingRate',
      'samplingRate must be > 0 to calibrate noise: with q = 0 no record is ever used and any noise meets the target',
    );
  }
  assertSteps(query.steps);
  assertDelta(query.delta);
  const orders = resolveOrders(query.orders);
  const cost = (sigma: number): PrivacyCost =>
    epsilonForEvents([{ noiseMultiplier: sigma, samplingRate: query.samplingRate, steps: query.steps }], query.delta, {
      orders,
      fractionalOrderSeries: query.fractionalOrderSeries,
    });
  const target = query.targetEpsilon;

  // Bracket: grow hi until feasible, then lo = the last infeasible value.
  let hi = 1;
  let hiCost = cost(hi);
  let lo = 0;
  while (hiCost.epsilon > target) {
    if (hi >= MAX_CALIBRATED_NOISE_MULTIPLIER) {
      throw new PrivacyParameterError(
        PrivacyParameterErrorCode.TargetUnreachable,
        'targetEpsilon',
        `targetEpsilon ${target} cannot be met with a noise multiplier up to ${MAX_CALIBRATED_NOISE_MULTIPLIER} ` +
          `(q = ${query.samplingRate}, steps = ${query.steps}, delta = ${query.delta}); raise epsilon or lower steps/q`,
      );
    }
    lo = hi;
    hi = Math.min(hi * 2, MAX_CALIBRATED_NOISE_MULTIPLIER);
    hiCost = cost(hi);
  }
  if (lo === 0) {
    // sigma = 1 is already feasible: shrink until infeasible or the floor is reached.
    for (;;) {
      const candidate = hi / 2;
      if (candidate < MIN_CALIBRATED_NOISE_MULTIPLIER) {
        const floorCost = cost(MIN_CALIBRATED_NOISE_MULTIPLIER);
        if (floorCost.epsilon <= target) return { ...floorCost, noiseMultiplier: MIN_CALIBRATED_NOISE_MULTIPLIER };
        lo = MIN_CALIBRATED_NOISE_MULTIPLIER;
        break;
      }
      const candidateCost = cost(candidate);
      if (candidateCost.epsilon > target) {
        lo = candidate;
        break;
      }
      hi = candidate;
      hiCost = candidateCost;
    }
  }
  // Invariant: epsilon(lo) > target >= epsilon(hi).
  for (let iteration = 0; iteration < 200 && hi - lo > CALIBRATION_RELATIVE_TOLERANCE * hi; iteration++) {
    const mid = (lo + hi) / 2;
    const midCost = cost(mid);
    if (midCost.epsilon <= target) {
      hi = mid;
      hiCost = midCost;
    } else {
      lo = mid;
    }
  }
  return { ...hiCost, noiseMultiplier: hi };
}
