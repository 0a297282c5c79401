// Statistics for an empirical privacy audit: train (or run the mechanism) many times with a canary record inserted and
// many times without, score each run with a distinguishing test, and turn the test's error rates into a certified LOWER
// bound on epsilon. A lower bound far below the charged epsilon is expected (the accountant is a worst-case bound); a
// lower bound ABOVE the charged epsilon means the implementation leaks more than it is charged for: a bug.
// References:
//   [CP34]  C. J. Clopper, E. S. Pearson, "The use of confidence or fiducial limits illustrated in the case of the
//           binomial", Biometrika 26(4), 1934 (the exact binomial interval, via beta quantiles).
//   [JUO20] M. Jagielski, J. Ullman, A. Oprea, "Auditing Differentially Private Machine Learning: How Private is
//           Private SGD?", NeurIPS 2020 (epsilon lower bounds from Clopper-Pearson bounds on a test's error rates).
//   [NST21] M. Nasr, S. Song, A. Thakurta, N. Papernot, N. Carlini, "Adversary Instantiation: Lower Bounds for
//           Differentially Private Machine Learning", IEEE S&P 2021 (the (epsilon, delta) form used here).
//   [NR]    W. H. Press et al., "Numerical Recipes", 3rd ed., section 6.4 (continued fraction of the incomplete beta).
// Pure arithmetic with no Node built-ins, so the console can show an audit's numbers.

import { logGamma } from './log-math.util';
import { PrivacyParameterError, PrivacyParameterErrorCode } from './privacy-parameter.exception';

export interface BinomialInterval {
  /** Lower end of the exact two-sided interval for the success probability; 0 when there are no successes. */
  readonly lower: number;
  /** Upper end; 1 when every trial succeeded. */
  readonly upper: number;
}

function fail(parameter: string, message: string, code = PrivacyParameterErrorCode.InvalidOption): never {
  throw new PrivacyParameterError(code, parameter, message);
}

function assertCount(value: number, parameter: string): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    fail(parameter, `${parameter} must be a non-negative integer count; got ${String(value)}`);
  }
}

function assertConfidence(confidence: number): void {
  if (typeof confidence !== 'number' || !Number.isFinite(confidence) || confidence <= 0 || confidence >= 1) {
    fail('confidence', `confidence must be a number in the open interval (0, 1), e.g. 0.95; got ${String(confidence)}`);
  }
}

function assertAuditDelta(delta: number): void {
  if (typeof delta !== 'number' || !Number.isFinite(delta) || delta < 0 || delta >= 1) {
    fail('delta', `delta must be a number in [0, 1); got ${String(delta)}`, PrivacyParameterErrorCode.InvalidDelta);
  }
}

/**
 * Continued fraction of the regularised incomplete beta function I_x(a, b) ([NR] 6.4, evaluated by the modified Lentz
 * method); converges fast for x < (a + 1) / (a + b + 2), which the caller arranges by symmetry.
 */
function betaContinuedFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  d = Math.abs(d) < tiny ? tiny : d;
  d = 1 / d;
  let f = d;
  for (let m = 1; m <= 10_000; m++) {
    const m2 = 2 * m;
    // Even step: d_{2m} = m (b - m) x / ((a + 2m - 1)(a + 2m)).
    let num = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + num * d;
    d = Math.abs(d) < tiny ? tiny : d;
    c = 1 + num / c;
    c = Math.abs(c) < tiny ? tiny : c;
    d = 1 / d;
    f *= d * c;
    // Odd step: d_{2m+1} = -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)).
    num = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + num * d;
    d = Math.abs(d) < tiny ? tiny : d;
    c = 1 + num / c;
    c = Math.abs(c) < tiny ? tiny : c;
    d = 1 / d;
    const delta = d * c;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return f;
}

/**
 * The regularised incomplete beta function I_x(a, b) = P(Beta(a, b) <= x) for a, b > 0 and x in [0, 1] ([NR] 6.4).
 * I_x(a, b) = 1 - I_{1-x}(b, a) picks the side where the continued fraction converges. Accuracy is set by the
 * log-gamma prefactor, ~2^-52 log Gamma(a + b) relative: 1e-14 for counts in the tens, 1e-11 at a = b = 4000.
 */
export function regularizedIncompleteBeta(x: number, a: number, b: number): number {
  if (!(a > 0) || !(b > 0) || !Number.isFinite(a) || !Number.isFinite(b)) {
    fail('a, b', `incomplete beta parameters must be finite and > 0; got a = ${String(a)}, b = ${String(b)}`);
  }
  if (!(x >= 0 && x <= 1)) fail('x', `incomplete beta argument must be in [0, 1]; got ${String(x)}`);
  if (x === 0) return 0;
  if (x === 1) return 1;
  // log of x^a (1-x)^b / (a B(a, b)), the prefactor of the continued fraction.
  const logFront = logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log1p(-x);
  if (x < (a + 1) / (a + b + 2)) return (Math.exp(logFront) * betaContinuedFraction(x, a, b)) / a;
  return 1 - (Math.exp(logFront) * betaContinuedFraction(1 - x, b, a)) / b;
}

/**
 * The p-quantile of Beta(a, b): the x with I_x(a, b) = p. I_x is increasing in x, so bisection is safe; 200 halvings
 * of [0, 1] reach the smallest doubles' spacing, and the loop stops once the bracket is 1e-15 relative.
 */
export function betaQuantile(p: number, a: number, b: number): number {
  if (!(p >= 0 && p <= 1)) fail('p', `a probability in [0, 1] is needed; got ${String(p)}`);
  if (p === 0) return 0;
  if (p === 1) return 1;
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 1100 && hi - lo > 1e-15 * hi; i++) {
    const mid = lo + (hi - lo) / 2;
    if (mid === lo || mid === hi) break;
    if (regularizedIncompleteBeta(mid, a, b) < p) lo = mid;
    else hi = mid;
  }
  return lo + (hi - lo) / 2;
}

/**
 * The exact (Clopper-Pearson) two-sided interval for a binomial proportion at `confidence` ([CP34]): lower =
 * Beta quantile (1 - confidence)/2 of Beta(k, n - k + 1), upper = quantile (1 + confidence)/2 of Beta(k + 1, n - k);
 * at k = 0 and k = n the closed forms 1 - (alpha/2)^(1/n) and (alpha/2)^(1/n) are used. Each end on its own is a
 * one-sided bound at level (1 + confidence)/2. Matches R's `binom.test(k, n, conf.level = confidence)$conf.int`.
 */
export function clopperPearson(successes: number, trials: number, confidence: number): BinomialInterval {
  assertCount(successes, 'successes');
  assertCount(trials, 'trials');
  if (trials === 0) fail('trials', 'trials must be at least 1');
  if (successes > trials) fail('successes', `successes (${successes}) cannot exceed trials (${trials})`);
  assertConfidence(confidence);
  const tail = (1 - confidence) / 2;
  const lower =
    successes === 0
      ? 0
      : successes === trials
        ? Math.exp(Math.log(tail) / trials)
        : betaQuantile(tail, successes, trials - successes + 1);
  const upper =
    successes === trials
      ? 1
      : successes === 0
        ? -Math.expm1(Math.log(tail) / trials)
        : betaQuantile(1 - tail, successes + 1, trials - successes);
  return { lower, upper };
}

export interface ErrorRateCounts {
  /** Runs WITHOUT the canary that the test called "with" (type I errors). */
  readonly falsePositives: number;
  /** Number of runs without the canary. */
  readonly negatives: number;
  /** Runs WITH the canary that the test called "without" (type II errors). */
  readonly falseNegatives: number;
  /** Number of runs with the canary. */
  readonly positives: number;
  /** The delta of the (epsilon, delta) guarantee under audit, in [0, 1). */
  readonly delta: number;
  /** Joint confidence of the lower bound, in (0, 1), e.g. 0.95. */
  readonly confidence: number;
}

export interface EmpiricalEpsilonBound {
  /** Certified lower bound on epsilon: with probability >= `confidence`, the mechanism is not (e, delta)-DP for any e below it. */
  readonly epsilonLowerBound: number;
  /** One-sided Clopper-Pearson upper bound on the false-positive rate. */
  readonly falsePositiveRateUpper: number;
  /** One-sided Clopper-Pearson upper bound on the false-negative rate. */
  readonly falseNegativeRateUpper: number;
  /** The joint confidence asked for. */
  readonly confidence: number;
  /** The level of each one-sided bound: 1 - (1 - confidence) / 2 (union bound over the two). */
  readonly perBoundConfidence: number;
}

/**
 * A certified lower bound on epsilon from a distinguishing test's error counts ([JUO20], [NST21]). An
 * (epsilon, delta)-DP mechanism forces every test to satisfy FPR + e^epsilon FNR >= 1 - delta and
 * FNR + e^epsilon FPR >= 1 - delta, so with upper bounds FPR' >= FPR and FNR' >= FNR,
 *   epsilon >= max(ln((1 - delta - FPR') / FNR'), ln((1 - delta - FNR') / FPR'), 0).
 * Confidence semantics: FPR' and FNR' are one-sided Clopper-Pearson upper bounds, each at level
 * 1 - (1 - confidence)/2, so by the union bound both hold together, and the returned bound is valid, with probability
 * at least `confidence` over the audit's runs. The runs must be independent and the test fixed before looking at them
 * (see bestThresholdAudit for choosing it from data).
 */
export function empiricalEpsilonLowerBound(counts: ErrorRateCounts): EmpiricalEpsilonBound {
  if (counts === null || typeof counts !== 'object') fail('counts', 'counts must be an object');
  const { falsePositives, negatives, falseNegatives, positives, delta, confidence } = counts;
  assertCount(falsePositives, 'falsePositives');
  assertCount(negatives, 'negatives');
  assertCount(falseNegatives, 'falseNegatives');
  assertCount(positives, 'positives');
  if (negatives === 0) fail('negatives', 'negatives must be at least 1 (runs without the canary)');
  if (positives === 0) fail('positives', 'positives must be at least 1 (runs with the canary)');
  if (falsePositives > negatives) fail('falsePositives', `falsePositives cannot exceed negatives (${negatives})`);
  if (falseNegatives > positives) fail('falseNegatives', `falseNegatives cannot exceed positives (${positives})`);
  assertAuditDelta(delta);
  assertConfidence(confidence);
  // The upper end of the two-sided interval at level `confidence` leaves (1 - confidence)/2 above it, so it is a
  // one-sided upper bound at level 1 - (1 - confidence)/2; two of them hold together with probability >= confidence.
  const perBoundConfidence = 1 - (1 - confidence) / 2;
  const fpr = clopperPearson(falsePositives, negatives, confidence).upper;
  const fnr = clopperPearson(falseNegatives, positives, confidence).upper;
  const epsilonLowerBound = epsilonFromErrorRateBounds(fpr, fnr, delta);
  return {
    epsilonLowerBound,
    falsePositiveRateUpper: fpr,
    falseNegativeRateUpper: fnr,
    confidence,
    perBoundConfidence,
  };
}

/** max(ln((1 - delta - fpr) / fnr), ln((1 - delta - fnr) / fpr), 0) for upper bounds fpr, fnr in (0, 1]. */
function epsilonFromErrorRateBounds(fpr: number, fnr: number, delta: number): number {
  const logRatio = (numerator: number, denominator: number): number =>
    numerator > 0 ? Math.log(numerator) - Math.log(denominator) : -Infinity;
  return Math.max(logRatio(1 - delta - fpr, fnr), logRatio(1 - delta - fnr, fpr), 0);
}

export interface ThresholdAudit extends EmpiricalEpsilonBound {
  /** The chosen threshold on the score. */
  readonly threshold: number;
  /** `above`: a run is called "with canary" when its score is >= threshold; `below`: when it is <= threshold. */
  readonly direction: 'above' | 'below';
  /** The counts on the certification half, from which the bound was computed. */
  readonly counts: Omit<ErrorRateCounts, 'delta' | 'confidence'>;
  /** The same bound computed on the selection half, which is biased upward: shown only for comparison. */
  readonly selectionHalfBound: number;
}

function assertScores(scores: readonly number[], parameter: string): void {
  if (!Array.isArray(scores) || scores.length < 2) fail(parameter, `${parameter} must hold at least 2 scores`);
  scores.forEach((score, index) => {
    if (typeof score !== 'number' || !Number.isFinite(score)) {
      fail(parameter, `${parameter}[${index}] must be a finite number; got ${String(score)}`);
    }
  });
}

/** Number of values in the ascending array `sorted` that are < t (lower bound by binary search). */
function countBelow(sorted: Float64Array, t: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Number of values <= t. */
function countAtMost(sorted: Float64Array, t: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function countsAt(
  inScores: Float64Array,
  outScores: Float64Array,
  threshold: number,
  direction: 'above' | 'below',
): Omit<ErrorRateCounts, 'delta' | 'confidence'> {
  const positives = inScores.length;
  const negatives = outScores.length;
  if (direction === 'above') {
    // Called "with" when score >= threshold.
    return {
      falsePositives: negatives - countBelow(outScores, threshold),
      negatives,
      falseNegatives: countBelow(inScores, threshold),
      positives,
    };
  }
  return {
    falsePositives: countAtMost(outScores, threshold),
    negatives,
    falseNegatives: positives - countAtMost(inScores, threshold),
    positives,
  };
}

function sortedCopy(values: readonly number[]): Float64Array {
  return Float64Array.from(values).sort();
}

/**
 * Audits a mechanism from one scalar score per run: `scoresIn` from runs with the canary, `scoresOut` from runs
 * without. Picking the threshold that looks best on the same runs that certify it would bias the bound upward (the
 * maximum over thresholds of many noisy bounds is not a valid bound), so the runs are SPLIT: even-indexed scores of each
 * world choose the threshold and direction (the ones maximising the bound on that half), odd-indexed scores certify it
 * with empiricalEpsilonLowerBound. The result is a valid lower bound at `confidence` provided the runs are independent
 * and their order does not depend on their scores; it spends half the runs, the price of choosing from data.
 */
export function bestThresholdAudit(
  scoresIn: readonly number[],
  scoresOut: readonly number[],
  delta: number,
  confidence: number,
): ThresholdAudit {
  assertScores(scoresIn, 'scoresIn');
  assertScores(scoresOut, 'scoresOut');
  assertAuditDelta(delta);
  assertConfidence(confidence);
  const half = (scores: readonly number[], parity: number): number[] => scores.filter((_, i) => i % 2 === parity);
  const selectIn = sortedCopy(half(scoresIn, 0));
  const selectOut = sortedCopy(half(scoresOut, 0));
  const certifyIn = sortedCopy(half(scoresIn, 1));
  const certifyOut = sortedCopy(half(scoresOut, 1));

  // Many thresholds share a count, so the Clopper-Pearson bounds are memoised per (count, trials).
  const upperBounds = new Map<string, number>();
  const upperBound = (k: number, n: number): number => {
    const key = `${k}/${n}`;
    let value = upperBounds.get(key);
    if (value === undefined) {
      value = clopperPearson(k, n, confidence).upper;
      upperBounds.set(key, value);
    }
    return value;
  };
  let best = { bound: -1, threshold: 0, direction: 'above' as 'above' | 'below' };
  const candidates = new Set<number>([...selectIn, ...selectOut]);
  for (const threshold of candidates) {
    for (const direction of ['above', 'below'] as const) {
      const c = countsAt(selectIn, selectOut, threshold, direction);
      const bound = epsilonFromErrorRateBounds(
        upperBound(c.falsePositives, c.negatives),
        upperBound(c.falseNegatives, c.positives),
        delta,
      );
      if (bound > best.bound) best = { bound, threshold, direction };
    }
  }
  const counts = countsAt(certifyIn, certifyOut, best.threshold, best.direction);
  return {
    ...empiricalEpsilonLowerBound({ ...counts, delta, confidence }),
    threshold: best.threshold,
    direction: best.direction,
    counts,
    selectionHalfBound: best.bound,
  };
}
