// Rényi DP accountant for the Poisson-subsampled Gaussian mechanism (add-or-remove-one neighbouring datasets).
// References:
//   [M17]   I. Mironov, "Rényi Differential Privacy", CSF 2017 (composition: RDP adds up per order).
//   [MTZ19] I. Mironov, K. Talwar, L. Zhang, "Rényi Differential Privacy of the Sampled Gaussian Mechanism", 2019,
//           arXiv:1908.10530, section 3.3 (integer orders: binomial expansion; fractional orders: a two-sided series).
//   [BBG+20] B. Balle, G. Barthe, M. Gaboardi, J. Hsu, T. Sato, "Hypothesis Testing Interpretations and Rényi
//           Differential Privacy", AISTATS 2020, Theorem 21 (RDP -> (epsilon, delta) conversion).
// The noise multiplier is sigma relative to the L2 sensitivity (the clipping norm C): noise stddev = noiseMultiplier * C.

import { logBinomial, logAdd, logErfc, logSumExp, SignedLogSum } from './log-math.util';
import { PrivacyParameterError, PrivacyParameterErrorCode } from './privacy-parameter.exception';
import { logASampledGaussianQuadrature } from './sampled-gaussian-quadrature';

/** Name reported with every epsilon this accountant produces (ledgers, CLI, audit). */
export const RDP_ACCOUNTANT_NAME = 'rdp-sampled-gaussian';

/**
 * The default order grid of Google's dp_accounting RdpAccountant (`DEFAULT_RDP_ORDERS` in
 * python/dp_accounting/dp_accounting/rdp/rdp_privacy_accountant.py): 1.1 .. 10.9 in steps of 0.1, 11 .. 63, 128, 256,
 * 512, 1024. It contains Opacus' grid except 11 and the four large orders, which help at large noise multipliers.
 */
export const DEFAULT_RDP_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, x) => 1 + (x + 1) / 10),
  ...Array.from({ length: 53 }, (_, x) => 11 + x),
  128,
  256,
  512,
  1024,
]);

/** Opacus' `RDPAccountant.DEFAULT_ALPHAS` (opacus/accountants/rdp.py): 1.1 .. 10.9 in steps of 0.1, then 12 .. 63. */
export const OPACUS_DEFAULT_ALPHAS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, x) => 1 + (x + 1) / 10),
  ...Array.from({ length: 52 }, (_, x) => 12 + x),
]);

/** Human-readable description of DEFAULT_RDP_ORDERS, reported next to every epsilon. */
export const DEFAULT_RDP_ORDERS_DESCRIPTION = 'dp-accounting default: 1.1..10.9 step 0.1, 11..63, 128, 256, 512, 1024';

/**
 * How fractional orders are summed. `exact` (default) is the signed series of [MTZ19] section 3.3, as Opacus and
 * TensorFlow Privacy's rdp_accountant compute it: it equals the RDP integral. `absolute` adds |terms|, an upper bound
 * that current dp_accounting computes (it is up to ~3% larger at orders near 1, identical at integer orders).
 */
export type FractionalOrderSeries = 'exact' | 'absolute';

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
  /** Defaults to `exact`. */
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

// Above this, exact evaluation at an integer order (alpha + 1 terms) or a fractional order gets needlessly slow; no
// useful (epsilon, delta) comes from such orders for the sampled Gaussian.
const MAX_FINITE_ORDER = 1e6;
// Stopping rules of the fractional-order series. `exact`: terms decreasing and below exp(-22) ~ 3e-10 of A - 1 (the
// quantity the RDP is made of; A itself is ~1), which bounds the remainder of the alternating tail, so the RDP is
// accurate to ~1e-9 relative. `absolute`: dp_accounting's rule (below exp(-30) of A, at most 1000 terms), so its numbers
// are reproduced. A series that has not stopped by then (q ~ 0.5 with large sigma converges only polynomially), or an
// exact series that is ill-conditioned, is replaced by quadrature of A - 1 (exact mode, sampled-gaussian-quadrature.ts)
// or by the log-convexity bound between neighbouring integer orders (an upper bound; absolute mode, or if quadrature
// fails).
const EXACT_STOP_LOG_MARGIN = 22;
const EXACT_MAX_TERMS = 5000;
const ABSOLUTE_STOP_LOG_MARGIN = 30;
const ABSOLUTE_MAX_TERMS = 1000;
// log(2^-52 / 1e-9): accept the exact series only if its worst-case rounding stays below 1e-9 of A - 1.
const LOG_ROUNDING_BUDGET = Math.log(2 ** -52 / 1e-9);

export function assertNoiseMultiplier(noiseMultiplier: number, parameter = 'noiseMultiplier'): void {
  if (typeof noiseMultiplier !== 'number' || !Number.isFinite(noiseMultiplier) || noiseMultiplier <= 0) {
    throw new PrivacyParameterError(
      PrivacyParameterErrorCode.InvalidNoiseMultiplier,
      parameter,
      `${parameter} must be a finite number > 0 (noise stddev relative to the clipping norm); got ${String(noiseMultiplier)}`,
    );
  }
}

export function assertSamplingRate(samplingRate: number, parameter = 'samplingRate'): void {
  if (typeof samplingRate !== 'number' || !Number.isFinite(samplingRate) || samplingRate < 0 || samplingRate > 1) {
    throw new PrivacyParameterError(
      PrivacyParameterErrorCode.InvalidSamplingRate,
      parameter,
      `${parameter} must be a number in [0, 1] (Poisson sampling probability); got ${String(samplingRate)}`,
    );
  }
}

export function assertSteps(steps: number, parameter = 'steps'): void {
  if (typeof steps !== 'number' || !Number.isSafeInteger(steps) || steps < 1) {
    throw new PrivacyParameterError(
      PrivacyParameterErrorCode.InvalidSteps,
      parameter,
      `${parameter} must be a positive integer; got ${String(steps)}`,
    );
  }
}

export function assertDelta(delta: number, parameter = 'delta'): void {
  if (typeof delta !== 'number' || !Number.isFinite(delta) || delta <= 0 || delta >= 1) {
    throw new PrivacyParameterError(
      PrivacyParameterErrorCode.InvalidDelta,
      parameter,
      `${parameter} must be a number in the open interval (0, 1); got ${String(delta)}`,
    );
  }
}

export function assertEpsilon(epsilon: number, parameter = 'epsilon'): void {
  if (typeof epsilon !== 'number' || !Number.isFinite(epsilon) || epsilon <= 0) {
    throw new PrivacyParameterError(
      PrivacyParameterErrorCode.InvalidEpsilon,
      parameter,
      `${parameter} must be a finite number > 0; got ${String(epsilon)}`,
    );
  }
}

/** Validates an order grid and returns it as a plain array (the default grid when none is given). */
export function resolveOrders(orders: readonly number[] | undefined, parameter = 'orders'): readonly number[] {
  if (orders === undefined) return DEFAULT_RDP_ORDERS;
  if (!Array.isArray(orders) || orders.length === 0) {
    throw new PrivacyParameterError(
      PrivacyParameterErrorCode.InvalidOrder,
      parameter,
      `${parameter} must be a non-empty list of RDP orders`,
    );
  }
  for (const order of orders) {
    const ok = typeof order === 'number' && (order === Infinity || (order > 1 && order <= MAX_FINITE_ORDER));
    if (!ok) {
      throw new PrivacyParameterError(
        PrivacyParameterErrorCode.InvalidOrder,
        parameter,
        `every RDP order in ${parameter} must be > 1 and <= ${MAX_FINITE_ORDER} (or Infinity); got ${String(order)}`,
      );
    }
  }
  return orders;
}

/** log(exp(c) - 1) for c > 0, accurate for tiny and huge c. */
function logExpm1(c: number): number {
  return c > 1 ? c + Math.log1p(-Math.exp(-c)) : Math.log(Math.expm1(c));
}

/**
 * log A_alpha for integer alpha and 0 < q < 1: the exact binomial expansion of [MTZ19] section 3.3,
 * A = sum_i C(alpha, i) (1-q)^(alpha-i) q^i exp((i^2 - i) / (2 sigma^2)). Because the binomial weights sum to 1,
 * A - 1 = sum_{i>=2} C(alpha, i) (1-q)^(alpha-i) q^i expm1((i^2 - i) / (2 sigma^2)), a sum of positive terms; summing that
 * in log space and returning log1p keeps full relative precision even when the RDP is ~1e-12 (tiny q, large sigma).
 */
function logAIntegerOrder(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const inv2Sigma2 = 1 / (2 * sigma * sigma);
  if (alpha < 2) return 0;
  const terms = new Float64Array(alpha - 1);
  for (let i = 2; i <= alpha; i++) {
    terms[i - 2] = logBinomial(alpha, i) + i * logQ + (alpha - i) * log1mQ + logExpm1((i * i - i) * inv2Sigma2);
  }
  return logAdd(0, logSumExp(terms));
}

/**
 * log A_alpha for fractional alpha and 0 < q < 1: [MTZ19] section 3.3 splits the integral at
 * z0 = sigma^2 log(1/q - 1) + 1/2 and expands each side as a convergent binomial series with erfc weights.
 * Returns NaN if the series does not settle within its term budget (the caller then uses an upper bound instead).
 */
function logAFractionalOrder(q: number, sigma: number, alpha: number, series: FractionalOrderSeries): number {
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const sigma2 = sigma * sigma;
  const z0 = sigma2 * (log1mQ - logQ) + 0.5;
  const erfcScale = Math.SQRT2 * sigma;
  const lower = new SignedLogSum();
  const upper = new SignedLogSum();
  let logCoef = 0; // log |C(alpha, i)|
  let coefSign = 1;
  let lastS0 = Infinity;
  let lastS1 = Infinity;
  let maxTermLog = -Infinity;
  const exact = series === 'exact';
  const maxTerms = (exact ? EXACT_MAX_TERMS : ABSOLUTE_MAX_TERMS) + 2 * Math.ceil(alpha);
  for (let i = 0; i < maxTerms; i++) {
    const j = alpha - i;
    const logT0 = logCoef + i * logQ + j * log1mQ;
    const logT1 = logCoef + j * logQ + i * log1mQ;
    const logE0 = -Math.LN2 + logErfc((i - z0) / erfcScale);
    const logE1 = -Math.LN2 + logErfc((z0 - j) / erfcScale);
    const s0 = logT0 + (i * i - i) / (2 * sigma2) + logE0;
    const s1 = logT1 + (j * j - j) / (2 * sigma2) + logE1;
    const sign = exact ? coefSign : 1;
    maxTermLog = Math.max(maxTermLog, s0, s1);
    lower.add(sign, s0);
    upper.add(sign, s1);
    const total = logAdd(
      lower.resultSign > 0 ? lower.resultLog : -Infinity,
      upper.resultSign > 0 ? upper.resultLog : -Infinity,
    );
    const decreasing = (s0 < lastS0 || s0 === -Infinity) && (s1 < lastS1 || s1 === -Infinity);
    const threshold = exact
      ? (total > 0 ? logExpm1(total) : total) - EXACT_STOP_LOG_MARGIN
      : total - ABSOLUTE_STOP_LOG_MARGIN;
    if (decreasing && Math.max(s0, s1) < threshold) {
      // Each half is an integral of a positive function; a non-positive partial sum means rounding broke down.
      if (lower.resultSign < 0 || upper.resultSign < 0 || !(total > 0)) return NaN;
      // The RDP is made of A - 1, but the sum carries rounding of ~(terms) * 2^-52 * (largest term): if that could
      // exceed 1e-9 of A - 1, the series is ill-conditioned here (tiny q or huge sigma) and the caller integrates.
      if (exact && logExpm1(total) < maxTermLog + Math.log(i + 2) + LOG_ROUNDING_BUDGET) return NaN;
      return total;
    }
    lastS0 = s0;
    lastS1 = s1;
    // C(alpha, i+1) = C(alpha, i) (alpha - i) / (i + 1); the sign flips whenever alpha - i < 0.
    const factor = alpha - i;
    logCoef += Math.log(Math.abs(factor)) - Math.log(i + 1);
    if (factor < 0) coefSign = -coefSign;
  }
  return NaN;
}

/**
 * Upper bound on log A_alpha at fractional alpha from the neighbouring integer orders: log A_alpha is the cumulant
 * generating function of the privacy loss, hence convex in alpha (Hölder), so with t = alpha - floor(alpha),
 * log A_alpha <= (1 - t) log A_floor + t log A_ceil, and log A_1 = 0 (Wang, Balle, Kasiviswanathan 2019, Corollary 10
 * use the same interpolation). Last resort when neither the series nor the quadrature settles.
 */
function logAFractionalUpperBound(q: number, sigma: number, alpha: number): number {
  const lower = Math.floor(alpha);
  const t = alpha - lower;
  const logLower = lower === 1 ? 0 : logAIntegerOrder(q, sigma, lower);
  return (1 - t) * logLower + t * logAIntegerOrder(q, sigma, lower + 1);
}

/**
 * RDP of ONE step of the Poisson-subsampled Gaussian mechanism at order `order` ([MTZ19] section 3.3):
 * 0 when q = 0, order / (2 sigma^2) when q = 1, log(A_alpha) / (alpha - 1) otherwise; +Infinity at order Infinity.
 */
export function rdpSampledGaussianStep(
  samplingRate: number,
  noiseMultiplier: number,
  order: number,
  series: FractionalOrderSeries = 'exact',
): number {
  assertSamplingRate(samplingRate);
  assertNoiseMultiplier(noiseMultiplier);
  resolveOrders([order], 'order');
  if (samplingRate === 0) return 0;
  if (order === Infinity) return Infinity;
  if (samplingRate === 1) return order / (2 * noiseMultiplier * noiseMultiplier);
  if (Number.isInteger(order)) return logAIntegerOrder(samplingRate, noiseMultiplier, order) / (order - 1);
  let logA = logAFractionalOrder(samplingRate, noiseMultiplier, order, series);
  if (Number.isNaN(logA) && series === 'exact')
    logA = logASampledGaussianQuadrature(samplingRate, noiseMultiplier, order);
  if (Number.isNaN(logA)) logA = logAFractionalUpperBound(samplingRate, noiseMultiplier, order);
  return logA / (order - 1);
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
  const series = options.fractionalOrderSeries ?? 'exact';
  const rdp = new Float64Array(orders.length);
  for (let k = 0; k < orders.length; k++) {
    const step = rdpSampledGaussianStep(event.samplingRate, event.noiseMultiplier, orders[k], series);
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
  if (!Array.isArray(events) || events.length === 0) {
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
    for (let k = 0; k < orders.length; k++) total[k] += rdp[k];
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
  let bestOrder = orders[0];
  for (let k = 0; k < orders.length; k++) {
    const alpha = orders[k];
    // A tiny negative value can only come from rounding in the exact series (RDP >= 0 always).
    const r = Math.max(0, rdp[k]);
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
  let bestOrder = orders[0];
  for (let k = 0; k < orders.length; k++) {
    const alpha = orders[k];
    const r = Math.max(0, rdp[k]);
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
