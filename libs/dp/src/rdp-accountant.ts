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

import { logAdd, logBinomial, logErfc, logGamma, logSumExp, SignedLogSum } from './log-math.util';
import { PrivacyParameterError, PrivacyParameterErrorCode } from './privacy-parameter.exception';
import { logASampledGaussianQuadrature } from './sampled-gaussian-quadrature';

/**
 * Name reported with every charged epsilon (ledgers, CLI, audit): the RDP accountant of the Poisson-subsampled Gaussian
 * with dp_accounting's RdpAccountant arithmetic ([DPA]).
 */
export const RDP_ACCOUNTANT_NAME = 'rdp-sampled-gaussian';

/** Name reported with the informational exact-integral figure, which is never charged. */
export const EXACT_INTEGRAL_ACCOUNTANT_NAME = 'rdp-sampled-gaussian-exact-integral-informational';

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
 * How fractional orders are summed.
 * - `dp-accounting` (default; the charged figure): the two-sided series of [MTZ19] section 3.3 with |C(alpha, i)|, as
 *   [DPA] `_compute_log_a_frac` sums it: an upper bound on the integral, up to ~3% above it at orders near 1, equal at
 *   integer orders. An order whose series has not settled after 1000 terms is excluded (its RDP is +Infinity), as in
 *   [DPA].
 * - `exact-integral` (informational only): the signed series, or quadrature of the defining integral where that series
 *   is ill-conditioned; what Opacus' `compute_rdp` computes. Never used for pricing, enforcement or ledgers.
 */
export type FractionalOrderSeries = 'dp-accounting' | 'exact-integral';

/** The series every charged epsilon uses. */
export const CHARGED_FRACTIONAL_ORDER_SERIES: FractionalOrderSeries = 'dp-accounting';

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

// Above this, exact evaluation at an integer order (alpha + 1 terms) or a fractional order gets needlessly slow; no
// useful (epsilon, delta) comes from such orders for the sampled Gaussian.
const MAX_FINITE_ORDER = 1e6;
// Stopping rule of the `exact-integral` series: terms decreasing and below exp(-22) ~ 3e-10 of A - 1 (the quantity the
// RDP is made of; A itself is ~1), which bounds the remainder of the alternating tail, so the RDP is accurate to ~1e-9
// relative. A series that has not stopped by then (q ~ 0.5 with large sigma converges only polynomially), or one that is
// ill-conditioned, is replaced by quadrature of A - 1 (sampled-gaussian-quadrature.ts) or, if that fails too, by the
// log-convexity bound between neighbouring integer orders (an upper bound).
const EXACT_STOP_LOG_MARGIN = 22;
const EXACT_MAX_TERMS = 5000;
// [DPA]'s rule for the `dp-accounting` series: stop at the first term i where both halves' terms decreased and the
// larger is below exp(-30) of the running total; give up after exactly 1000 terms (i = 0..999) and exclude the order.
const DP_ACCOUNTING_STOP_LOG_MARGIN = 30;
const DP_ACCOUNTING_MAX_TERMS = 1000;
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

/**
 * Array.isArray for a parameter typed as a readonly array: the built-in narrows `readonly T[]` to `any[]`, so the
 * checked value would lose its element type; this keeps it (callers from JavaScript may still pass anything).
 */
function isList<T>(value: readonly T[]): value is readonly T[] {
  return Array.isArray(value);
}

/** Validates an order grid and returns it as a plain array (the default grid when none is given). */
export function resolveOrders(orders: readonly number[] | undefined, parameter = 'orders'): readonly number[] {
  if (orders === undefined) return DEFAULT_RDP_ORDERS;
  if (!isList(orders) || orders.length === 0) {
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
 * The rounding guard added to every charged log A_alpha (q strictly between 0 and 1), so that the charged RDP is never
 * below the one [DPA] computes for the same inputs, whatever the rounding of either implementation. Both sum `terms`
 * terms in log space, each addition rounding at the scale of the running log-sum (at most `scale` =
 * max(|alpha log(1-q)|, |log A|)); [DPA] also builds each log-binomial from three `gammaln` values of magnitude up to
 * log Gamma(alpha + 1) and keeps their rounding (~1800 units of 2^-52 in log A at alpha = 1024, q = 6e-4, sigma = 40),
 * which weighs only on the terms after the first, whose share of A is `laterShare`. In units of 2^-52 the guard is
 * 8 |log A| + 4 terms scale + 4 (terms + log Gamma(alpha + 1)) laterShare + 4: several times the largest difference
 * measured against dp_accounting (commit b5b0286) over 6000 random (q, sigma, alpha), and it moves epsilon only where
 * dp_accounting's own figure carries rounding of the same order.
 */
function dpAccountingRoundingGuard(q: number, alpha: number, terms: number, logA: number, logFirst: number): number {
  const scale = Math.max(Math.abs(alpha * Math.log1p(-q)), Math.abs(logA));
  const laterShare = Math.min(1, Math.max(0, -Math.expm1(logFirst - logA)));
  return 2 ** -52 * (8 * Math.abs(logA) + 4 * terms * scale + 4 * (terms + logGamma(alpha + 1)) * laterShare + 4);
}

/**
 * log A_alpha for fractional alpha and 0 < q < 1, the charged way ([DPA] `_compute_log_a_frac`): [MTZ19] section 3.3
 * splits the integral at z0 = sigma^2 log(1/q - 1) + 1/2 and expands each side as a binomial series with erfc weights;
 * here every term is added with |C(alpha, i)|, which bounds the integral from above. The sum is raised by the rounding
 * guard below. Returns +Infinity (the order is then excluded from the minimum over orders, exactly as dp_accounting
 * excludes it) if the series has not met the stopping rule within 1000 terms.
 */
function logAFractionalDpAccounting(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const sigma2 = sigma * sigma;
  const z0 = sigma2 * (log1mQ - logQ) + 0.5;
  const erfcScale = Math.SQRT2 * sigma;
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  // -Infinity, not +Infinity: the first term can never satisfy "decreasing", as in [DPA].
  let lastS0 = -Infinity;
  let lastS1 = -Infinity;
  let logCoef = 0; // log |C(alpha, i)|
  let logFirst = -Infinity; // log of the i = 0 terms of both halves, whose binomial coefficient is exactly 1
  for (let i = 0; i < DP_ACCOUNTING_MAX_TERMS; i++) {
    const j = alpha - i;
    const s0 = logCoef + i * logQ + j * log1mQ + (i * i - i) / (2 * sigma2) - Math.LN2 + logErfc((i - z0) / erfcScale);
    const s1 = logCoef + j * logQ + i * log1mQ + (j * j - j) / (2 * sigma2) - Math.LN2 + logErfc((z0 - j) / erfcScale);
    if (i === 0) logFirst = logAdd(s0, s1);
    logA0 = logAdd(logA0, s0);
    logA1 = logAdd(logA1, s1);
    const total = logAdd(logA0, logA1);
    if (s0 < lastS0 && s1 < lastS1 && Math.max(s0, s1) < total - DP_ACCOUNTING_STOP_LOG_MARGIN) {
      return total + dpAccountingRoundingGuard(q, alpha, i + 1, total, logFirst);
    }
    lastS0 = s0;
    lastS1 = s1;
    // |C(alpha, i+1)| = |C(alpha, i)| |alpha - i| / (i + 1); alpha is not an integer, so alpha - i is never 0.
    logCoef += Math.log(Math.abs(alpha - i)) - Math.log(i + 1);
  }
  return Infinity;
}

/**
 * log A_alpha for fractional alpha and 0 < q < 1, informational: the same series summed with the signs of C(alpha, i),
 * which equals the defining integral. Returns NaN if it does not settle within its term budget or is ill-conditioned
 * (the caller then integrates numerically).
 */
function logAFractionalExactSeries(q: number, sigma: number, alpha: number): number {
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
  const maxTerms = EXACT_MAX_TERMS + 2 * Math.ceil(alpha);
  for (let i = 0; i < maxTerms; i++) {
    const j = alpha - i;
    const logT0 = logCoef + i * logQ + j * log1mQ;
    const logT1 = logCoef + j * logQ + i * log1mQ;
    const logE0 = -Math.LN2 + logErfc((i - z0) / erfcScale);
    const logE1 = -Math.LN2 + logErfc((z0 - j) / erfcScale);
    const s0 = logT0 + (i * i - i) / (2 * sigma2) + logE0;
    const s1 = logT1 + (j * j - j) / (2 * sigma2) + logE1;
    maxTermLog = Math.max(maxTermLog, s0, s1);
    lower.add(coefSign, s0);
    upper.add(coefSign, s1);
    const total = logAdd(
      lower.resultSign > 0 ? lower.resultLog : -Infinity,
      upper.resultSign > 0 ? upper.resultLog : -Infinity,
    );
    const decreasing = (s0 < lastS0 || s0 === -Infinity) && (s1 < lastS1 || s1 === -Infinity);
    const threshold = (total > 0 ? logExpm1(total) : total) - EXACT_STOP_LOG_MARGIN;
    if (decreasing && Math.max(s0, s1) < threshold) {
      // Each half is an integral of a positive function; a non-positive partial sum means rounding broke down.
      if (lower.resultSign < 0 || upper.resultSign < 0 || !(total > 0)) return NaN;
      // The RDP is made of A - 1, but the sum carries rounding of ~(terms) * 2^-52 * (largest term): if that could
      // exceed 1e-9 of A - 1, the series is ill-conditioned here (tiny q or huge sigma) and the caller integrates.
      if (logExpm1(total) < maxTermLog + Math.log(i + 2) + LOG_ROUNDING_BUDGET) return NaN;
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

/** log A of the exact integral for a fractional order: the signed series, else quadrature, else an upper bound. */
function exactIntegralLogA(samplingRate: number, noiseMultiplier: number, order: number): number {
  let logA = logAFractionalExactSeries(samplingRate, noiseMultiplier, order);
  if (Number.isNaN(logA)) logA = logASampledGaussianQuadrature(samplingRate, noiseMultiplier, order);
  if (Number.isNaN(logA)) logA = logAFractionalUpperBound(samplingRate, noiseMultiplier, order);
  return logA;
}

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
