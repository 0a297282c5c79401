// Pricing and calibration on top of the RDP accountant: epsilon for a noise multiplier, and the smallest noise
// multiplier for a target epsilon. Pure functions; the hub's privacy ledger, the agents and the console call these.
// Every figure here is the CHARGED one: Google dp_accounting's RdpAccountant arithmetic (see rdp-accountant.ts), so an
// auditor who re-prices a study with dp_accounting gets the same epsilon to six significant digits, never a larger one.
// The exact-integral figure is available only through informationalExactIntegralEpsilon, named as informational.

import {
  assertDelta,
  assertEpsilon,
  assertNoiseMultiplier,
  assertSamplingRate,
  assertSteps,
  composeRdp,
  epsilonFromRdp,
  EXACT_INTEGRAL_ACCOUNTANT_NAME,
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
  /** RDP orders (dp_accounting's `RdpAccountant(orders)`); defaults to DEFAULT_RDP_ORDERS. */
  readonly orders?: readonly number[];
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
}

export interface NoiseCalibration extends PrivacyCost {
  /** The smallest noise multiplier (within CALIBRATION_RELATIVE_TOLERANCE) whose epsilon is <= targetEpsilon. */
  readonly noiseMultiplier: number;
}

/** An epsilon that is reported for comparison only, never charged, enforced or recorded in a ledger. */
export interface InformationalPrivacyCost {
  readonly epsilon: number;
  readonly bestOrder: number;
  readonly accountant: typeof EXACT_INTEGRAL_ACCOUNTANT_NAME;
  readonly informational: true;
}

/**
 * The delta dp_accounting's `RdpAccountant.get_epsilon(target_delta)` hands to `compute_epsilon`: it removes the delta
 * of earlier (epsilon, delta) events, 1 - (1 - delta) / (1 - extra), which with extra = 0 is -expm1(log1p(-delta)), a
 * value within an ulp or so of delta. Reproduced so that even the last digits go through the same steps.
 */
function dpAccountingEffectiveDelta(delta: number): number {
  return -Math.expm1(Math.log1p(-delta));
}

/**
 * The charged epsilon of a list of heterogeneous events at `delta`: RDP composition (Mironov 2017, Prop. 1) and the
 * Balle et al. 2020 (Theorem 21) conversion, minimised over the orders, exactly as dp_accounting's RdpAccountant
 * composes PoissonSampledDpEvent(q, GaussianDpEvent(sigma)) `steps` times per event and reports `get_epsilon(delta)`.
 * An event with samplingRate 1 is the plain Gaussian mechanism (GaussianDpEvent), e.g. `steps` noisy releases of a
 * count with sensitivity 1 and noise stddev sigma.
 */
export function epsilonForEvents(
  events: readonly SampledGaussianEvent[],
  delta: number,
  options: { readonly orders?: readonly number[] } = {},
): PrivacyCost {
  assertDelta(delta);
  const curve = composeRdp(events, { orders: options.orders, fractionalOrderSeries: 'dp-accounting' });
  const { epsilon, bestOrder } = epsilonFromRdp(curve.orders, curve.rdp, dpAccountingEffectiveDelta(delta));
  return { epsilon, bestOrder, accountant: RDP_ACCOUNTANT_NAME };
}

/**
 * INFORMATIONAL ONLY: the epsilon of the same events with fractional orders integrated exactly (the signed series of
 * Mironov, Talwar, Zhang 2019 section 3.3, or quadrature), which is what Opacus' RDP accountant computes. Up to a few
 * percent below the charged figure when the best order is fractional; equal when it is an integer. Never use it to
 * price, enforce or record a budget: an auditor re-pricing with dp_accounting would find the study over its target.
 */
export function informationalExactIntegralEpsilon(
  events: readonly SampledGaussianEvent[],
  delta: number,
  options: { readonly orders?: readonly number[] } = {},
): InformationalPrivacyCost {
  assertDelta(delta);
  const curve = composeRdp(events, { orders: options.orders, fractionalOrderSeries: 'exact-integral' });
  const { epsilon, bestOrder } = epsilonFromRdp(curve.orders, curve.rdp, delta);
  return { epsilon, bestOrder, accountant: EXACT_INTEGRAL_ACCOUNTANT_NAME, informational: true };
}

/**
 * The charged epsilon of `steps` steps of DP-SGD with Poisson sampling rate q and noise multiplier sigma, at `delta`
 * (Mironov, Talwar, Zhang 2019; Balle et al. 2020 Theorem 21; dp_accounting RdpAccountant arithmetic).
 */
export function epsilonForNoise(query: PrivacyCostQuery): PrivacyCost {
  assertNoiseMultiplier(query.noiseMultiplier);
  assertSamplingRate(query.samplingRate);
  assertSteps(query.steps);
  assertDelta(query.delta);
  return epsilonForEvents(
    [{ noiseMultiplier: query.noiseMultiplier, samplingRate: query.samplingRate, steps: query.steps }],
    query.delta,
    { orders: query.orders },
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
 * The smallest noise multiplier whose charged epsilon at (samplingRate, steps, delta) does not exceed targetEpsilon,
 * found by bisection (epsilon is non-increasing in sigma: more noise is post-processing of less) to 1e-10 relative.
 * The returned multiplier is always on the feasible side: epsilonForNoise(result) <= targetEpsilon, and since the
 * charged epsilon is never below dp_accounting's, dp_accounting's epsilon for it does not exceed the target either;
 * it lies within 1e-6 relative of what dp_accounting's `calibrate_dp_mechanism` returns (whose own tolerance is 1e-6
 * of its bracket). samplingRate 1 calibrates the plain Gaussian mechanism released `steps` times. Searches
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
