// Rényi DP accountant for the Poisson-subsampled Gaussian mechanism (add-or-remove-one neighbouring datasets).
// References:
//   [M17]   I. Mironov, "Rényi Differential Privacy", CSF 2017 (composition: RDP adds up per order).
//   [MTZ19] I. Mironov, K. Talwar, L. Zhang, "Rényi Differential Privacy of the Sampled Gaussian Mechanism", 2019,
//           arXiv:1908.10530, section 3.3 (integer orders: binomial expansion; fractional orders: a two-sided series).
//   [BBG+20] B. Balle, G. Barthe, M. Gaboardi, J. Hsu, T. Sato, "Hypothesis Testing Interpretations and Rényi
//           Differential Privacy", AISTATS 2020, Theorem 21 (RDP -> (epsilon, delta) conversion).
//   [DPA]   Google's dp_accounting, python/dp_accounting/dp_accounting/rdp/rdp_privacy_accountant.py
//           (google/differential-privacy): the RdpAccountant an auditor re-prices our numbers with.
// The noise multiplier is sigma relative to the L2 sensitivity (the clipping norm C): noise stddev = noiseMultiplier * C.
//
// What is charged: the default series, 'dp-accounting', reproduces [DPA]'s RdpAccountant arithmetic (same orders, same
// fractional-order series with |binomial coefficients|, same stopping rule and term budget, same exclusion of orders
// whose series does not settle, same conversion), so every epsilon the hub, the agents and the console charge is the
// figure dp_accounting prints for PoissonSampledDpEvent(q, GaussianDpEvent(sigma)) self-composed `steps` times.
// 'exact-integral' is the signed series / quadrature of the defining integral (what Opacus computes): up to a few
// percent lower at fractional orders near 1, and only ever reported as an informational figure.
//
// Parts: rdp-orders.ts (names, order grids, series), sampled-gaussian-log-a.ts (log A_alpha per order, both series),
// privacy-parameter.util.ts (parameter checks); this file composes them into per-order RDP and (epsilon, delta).

import { PrivacyParameterError, PrivacyParameterErrorCode } from './privacy-parameter.exception';
import { assertDelta, assertNoiseMultiplier, assertSamplingRate, assertSteps, isList } from './privacy-parameter.util';
import { CHARGED_FRACTIONAL_ORDER_SERIES, FractionalOrderSeries, resolveOrders } from './rdp-orders';
import {
  dpAccountingRoundingGuard,
  exactIntegralLogA,
  logAFractionalDpAccounting,
  logAIntegerOrder,
} from './sampled-gaussian-log-a';

export {
  assertDelta,
  assertEpsilon,
  assertNoiseMultiplier,
  assertSamplingRate,
  assertSteps,
} from './privacy-parameter.util';
export {
  CHARGED_FRACTIONAL_ORDER_SERIES,
  DEFAULT_RDP_ORDERS,
  DEFAULT_RDP_ORDERS_DESCRIPTION,
  EXACT_INTEGRAL_ACCOUNTANT_NAME,
  OPACUS_DEFAULT_ALPHAS,
  RDP_ACCOUNTANT_NAME,
  resolveOrders,
} from './rdp-orders';
export type { FractionalOrderSeries } from './rdp-orders';

/** One homogeneous stretch of training: `steps` invocations of the Poisson-subsampled Gaussian mechanism. */
export interface SampledGaussianEvent {
  /** Noise stddev divided by the L2 sensitivity (clipping norm); > 0. */
  readonly noiseMultiplier: number;
  /** Poisson sampling probability q in [0, 1]; 1 means the full dataset every step. */
  readonly samplingRate: number;
  /** Number of mechanism invocations; a positive integer. */
  readonly steps: number;
}

export interface RdpOptions {
  /** RDP orders (each > 1, or +Infinity); defaults to DEFAULT_RDP_ORDERS. */
  readonly orders?: readonly number[];
  /** Defaults to `dp-accounting` (the charged figure); `exact-integral` is informational. */
  readonly fractionalOrderSeries?: FractionalOrderSeries;
}

/** Total RDP per order after composing a list of events. */
export interface RdpCurve {
  readonly orders: readonly number[];
  /** RDP epsilon at each order (same index as `orders`); may be +Infinity. */
  readonly rdp: Float64Array;
}

export interface EpsilonResult {
  readonly epsilon: number;
  /** The order at which the conversion was tightest. */
  readonly bestOrder: number;
}

export interface DeltaResult {
  readonly delta: number;
  readonly bestOrder: number;
}

/**
 * RDP of ONE step of the Poisson-subsampled Gaussian mechanism at order `order` ([MTZ19] section 3.3):
 * 0 when q = 0, order / (2 sigma^2) when q = 1 (the Gaussian mechanism, [DPA] GaussianDpEvent), log(A_alpha) / (alpha - 1)
 * otherwise; +Infinity at order Infinity, and +Infinity where the `dp-accounting` series does not settle (excluded order).
 */
export function rdpSampledGaussianStep(
  samplingRate: number,
  noiseMultiplier: number,
  order: number,
  series: FractionalOrderSeries = CHARGED_FRACTIONAL_ORDER_SERIES,
): number {
  assertSamplingRate(samplingRate);
  assertNoiseMultiplier(noiseMultiplier);
  resolveOrders([order], 'order');
  assertSeries(series);
  if (samplingRate === 0) return 0;
  if (order === Infinity) return Infinity;
  if (samplingRate === 1) return order / (2 * noiseMultiplier * noiseMultiplier);
  // A pure function of its arguments, and the costly part of every charge (series and integrals per order): a
  // ledger prices the same (q, σ) at every round with more steps, which only multiplies these per-step figures.
  const key = `${samplingRate}|${noiseMultiplier}|${order}|${series}`;
  const kept = stepRdpKept.get(key);
  if (kept !== undefined) return kept;
  const rdp = sampledGaussianStepRdp(samplingRate, noiseMultiplier, order, series);
  if (stepRdpKept.size >= STEP_RDP_KEPT) stepRdpKept.delete(stepRdpKept.keys().next().value as string);
  stepRdpKept.set(key, rdp);
  return rdp;
}

/** Per-step RDP figures already computed, oldest first out: a few default order grids' worth. */
const stepRdpKept = new Map<string, number>();
const STEP_RDP_KEPT = 4_096;

function sampledGaussianStepRdp(
  samplingRate: number,
  noiseMultiplier: number,
  order: number,
  series: FractionalOrderSeries,
): number {
  // Integer orders: both series are the same finite binomial sum ([DPA] `_compute_log_a_int` sums log-terms of A; we
  // sum A - 1, the same number without the cancellation, so tiny RDPs keep their digits). The charged figure adds the
  // rounding guard so it is never below dp_accounting's rounded sum.
  if (Number.isInteger(order)) {
    const logA = logAIntegerOrder(samplingRate, noiseMultiplier, order);
    if (series === 'exact-integral') return logA / (order - 1);
    // The i = 0 term of the binomial sum is (1 - q)^alpha.
    const logFirst = order * Math.log1p(-samplingRate);
    return (logA + dpAccountingRoundingGuard(samplingRate, order, order + 1, logA, logFirst)) / (order - 1);
  }
  if (series === 'exact-integral') return exactIntegralLogA(samplingRate, noiseMultiplier, order) / (order - 1);
  const charged = logAFractionalDpAccounting(samplingRate, noiseMultiplier, order) / (order - 1);
  // Never below dp_accounting's figure (reproducibility), and never below the exact integral where dp_accounting's
  // stopping rule undercuts it: the series stops once a term falls e^-30 below the running sum, and the positive
  // terms it drops are a visible fraction of a tiny RDP (q = 1e-4, σ = 0.81, α = 5.38: 2·10^-10 relative below the
  // integral, checked against a 50-digit quadrature in the spec). That truncation is far below 10^-6 relative; a
  // larger gap means the signed series lost its digits to cancellation (tiny σ), not that the integral is larger.
  const exact = exactIntegralLogA(samplingRate, noiseMultiplier, order) / (order - 1);
  return exact > charged && exact - charged <= TRUNCATION_GAP * charged ? exact : charged;
}

/** Largest relative gap attributed to dp_accounting's truncated series rather than to a failed exact series. */
const TRUNCATION_GAP = 1e-6;

function assertSeries(series: FractionalOrderSeries): void {
  if (series !== 'dp-accounting' && series !== 'exact-integral') {
    throw new PrivacyParameterError(
      PrivacyParameterErrorCode.InvalidOption,
      'fractionalOrderSeries',
      `fractionalOrderSeries must be 'dp-accounting' (charged) or 'exact-integral' (informational); got ${String(series)}`,
    );
  }
}

function assertEvent(event: SampledGaussianEvent, index: number | undefined): void {
  const prefix = index === undefined ? '' : `events[${index}].`;
  if (event === null || typeof event !== 'object') {
    throw new PrivacyParameterError(
      PrivacyParameterErrorCode.InvalidOption,
      prefix || 'event',
      `${prefix || 'event'} must be an object`,
    );
  }
  assertNoiseMultiplier(event.noiseMultiplier, `${prefix}noiseMultiplier`);
  assertSamplingRate(event.samplingRate, `${prefix}samplingRate`);
  assertSteps(event.steps, `${prefix}steps`);
}

/** RDP of `event.steps` identical steps at each order: steps times the one-step RDP ([M17] Proposition 1). */
export function computeRdp(event: SampledGaussianEvent, options: RdpOptions = {}): RdpCurve {
  assertEvent(event, undefined);
  const orders = resolveOrders(options.orders);
  const series = options.fractionalOrderSeries ?? CHARGED_FRACTIONAL_ORDER_SERIES;
  const rdp = new Float64Array(orders.length);
  for (let k = 0; k < orders.length; k++) {
    const step = rdpSampledGaussianStep(event.samplingRate, event.noiseMultiplier, orders[k]!, series);
    // 0 * Infinity would be NaN; steps >= 1 so this only guards q = 0 at order Infinity, which is 0.
    rdp[k] = step === 0 ? 0 : event.steps * step;
  }
  return { orders, rdp };
}

/**
 * Heterogeneous composition ([M17] Proposition 1): the RDP curves of all events are summed order by order, so a study
 * whose noise multiplier or sampling rate changed between rounds is priced exactly.
 */
export function composeRdp(events: readonly SampledGaussianEvent[], options: RdpOptions = {}): RdpCurve {
  if (!isList(events) || events.length === 0) {
    throw new PrivacyParameterError(
      PrivacyParameterErrorCode.InvalidOption,
      'events',
      'events must be a non-empty list of {noiseMultiplier, samplingRate, steps}',
    );
  }
  events.forEach((event, index) => assertEvent(event, index));
  const orders = resolveOrders(options.orders);
  const total = new Float64Array(orders.length);
  for (const event of events) {
    const { rdp } = computeRdp(event, { ...options, orders });
    for (let k = 0; k < orders.length; k++) total[k]! += rdp[k]!;
  }
  return { orders, rdp: total };
}

function assertCurve(orders: readonly number[], rdp: ArrayLike<number>): void {
  resolveOrders(orders);
  if (rdp.length !== orders.length) {
    throw new PrivacyParameterError(
      PrivacyParameterErrorCode.InvalidOrder,
      'rdp',
      `rdp has ${rdp.length} values but there are ${orders.length} orders`,
    );
  }
  for (let k = 0; k < rdp.length; k++) {
    if (Number.isNaN(rdp[k])) {
      throw new PrivacyParameterError(PrivacyParameterErrorCode.NonFiniteValue, 'rdp', `rdp[${k}] is NaN`);
    }
  }
}

/**
 * Smallest epsilon over the orders such that the RDP curve implies (epsilon, delta)-DP, with the conversion of
 * [BBG+20] Theorem 21: epsilon = rdp + log1p(-1/alpha) - log(delta * alpha) / (alpha - 1), used for alpha > 1.01 as in
 * dp_accounting's `compute_epsilon` (and equal to Opacus' `get_privacy_spent`), plus the KL-divergence bound
 * delta >= sqrt(1 - exp(-rdp)) which gives epsilon = 0. Result is clamped at 0; +Infinity if no order is finite.
 */
export function epsilonFromRdp(orders: readonly number[], rdp: ArrayLike<number>, delta: number): EpsilonResult {
  assertDelta(delta);
  assertCurve(orders, rdp);
  let best = Infinity;
  let bestOrder = orders[0]!;
  for (let k = 0; k < orders.length; k++) {
    const alpha = orders[k]!;
    // A tiny negative value can only come from rounding in the exact series (RDP >= 0 always).
    const r = Math.max(0, rdp[k]!);
    let epsilon: number;
    if (delta * delta + Math.expm1(-r) > 0) {
      epsilon = 0;
    } else if (alpha > 1.01 && alpha !== Infinity && r !== Infinity) {
      epsilon = r + Math.log1p(-1 / alpha) - Math.log(delta * alpha) / (alpha - 1);
    } else {
      epsilon = Infinity;
    }
    if (epsilon < best) {
      best = epsilon;
      bestOrder = alpha;
    }
  }
  return { epsilon: Math.max(0, best), bestOrder };
}

/**
 * Smallest delta over the orders for a given epsilon ([BBG+20] Theorem 21 solved for delta, in log space, as in
 * dp_accounting's `compute_delta`), together with the KL bound delta <= sqrt(1 - exp(-rdp)). Clamped to at most 1.
 */
export function deltaFromRdp(orders: readonly number[], rdp: ArrayLike<number>, epsilon: number): DeltaResult {
  if (typeof epsilon !== 'number' || Number.isNaN(epsilon) || epsilon < 0) {
    throw new PrivacyParameterError(
      PrivacyParameterErrorCode.InvalidEpsilon,
      'epsilon',
      `epsilon must be a number >= 0; got ${String(epsilon)}`,
    );
  }
  assertCurve(orders, rdp);
  let bestLog = Infinity;
  let bestOrder = orders[0]!;
  for (let k = 0; k < orders.length; k++) {
    const alpha = orders[k]!;
    const r = Math.max(0, rdp[k]!);
    let logDelta = r === 0 ? -Infinity : r === Infinity ? 0 : 0.5 * Math.log1p(-Math.exp(-r));
    if (alpha > 1.01 && alpha !== Infinity && r !== Infinity) {
      const bound = (alpha - 1) * (r - epsilon + Math.log1p(-1 / alpha)) - Math.log(alpha);
      logDelta = Math.min(logDelta, bound);
    }
    if (logDelta < bestLog) {
      bestLog = logDelta;
      bestOrder = alpha;
    }
  }
  return { delta: Math.min(Math.exp(bestLog), 1), bestOrder };
}
