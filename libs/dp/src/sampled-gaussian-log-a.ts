// log A_alpha of the Poisson-subsampled Gaussian mechanism, the quantity its Rényi DP is made of
// (RDP at order alpha = log A_alpha / (alpha - 1)), for 0 < q < 1; references as in rdp-accountant.ts:
//   [MTZ19] Mironov, Talwar, Zhang, "Rényi Differential Privacy of the Sampled Gaussian Mechanism", 2019, section 3.3.
//   [DPA]   Google's dp_accounting, rdp/rdp_privacy_accountant.py (the charged arithmetic this reproduces).

import { logAdd, logBinomial, logErfc, logGamma, SignedLogSum, logSumExp } from './log-math.util';
import { logASampledGaussianQuadrature } from './sampled-gaussian-quadrature';

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
export function logAIntegerOrder(q: number, sigma: number, alpha: number): number {
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
export function dpAccountingRoundingGuard(
  q: number,
  alpha: number,
  terms: number,
  logA: number,
  logFirst: number,
): number {
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
export function logAFractionalDpAccounting(q: number, sigma: number, alpha: number): number {
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

/** log A of the exact integral for a fractional order: the signed series, else quadrature, else an upper bound. */
export function exactIntegralLogA(samplingRate: number, noiseMultiplier: number, order: number): number {
  let logA = logAFractionalExactSeries(samplingRate, noiseMultiplier, order);
  if (Number.isNaN(logA)) logA = logASampledGaussianQuadrature(samplingRate, noiseMultiplier, order);
  if (Number.isNaN(logA)) logA = logAFractionalUpperBound(samplingRate, noiseMultiplier, order);
  return logA;
}
