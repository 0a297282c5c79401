// Log-space arithmetic for the RDP accountant. Every quantity here is a natural logarithm; zero is -Infinity.
// JavaScript has no lgamma or erfc, so both are implemented here and checked against mpmath in log-math.util.spec.ts.

const HALF_LOG_TWO_PI = 0.5 * Math.log(2 * Math.PI);
const LOG_SQRT_PI = 0.5 * Math.log(Math.PI);

/** log(exp(a) + exp(b)) without overflow. */
export function logAdd(a: number, b: number): number {
  const hi = Math.max(a, b);
  const lo = Math.min(a, b);
  if (lo === -Infinity) return hi;
  if (hi === Infinity) return Infinity;
  return hi + Math.log1p(Math.exp(lo - hi));
}

/** log(sum(exp(values))) with the maximum factored out, so huge or tiny logs neither overflow nor vanish. */
export function logSumExp(values: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) if (values[i]! > max) max = values[i]!;
  if (max === -Infinity || max === Infinity) return max;
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += Math.exp(values[i]! - max);
  return max + Math.log(sum);
}

/**
 * A running sum of signed terms, each given as (sign, log|term|), kept as (sign, log|sum|). Needed for the series of
 * Mironov, Talwar, Zhang 2019 section 3.3 at fractional orders, whose binomial coefficients alternate in sign.
 */
export class SignedLogSum {
  private sign = 0;
  private log = -Infinity;

  add(termSign: number, termLog: number): void {
    if (termLog === -Infinity || termSign === 0) return;
    if (this.sign === 0) {
      this.sign = termSign;
      this.log = termLog;
      return;
    }
    if (termSign === this.sign) {
      this.log = logAdd(this.log, termLog);
      return;
    }
    // Opposite signs: the larger magnitude wins; log(|x| - |y|) = log|x| + log1p(-exp(log|y| - log|x|)).
    if (termLog === this.log) {
      this.sign = 0;
      this.log = -Infinity;
    } else if (termLog > this.log) {
      this.log = termLog + Math.log1p(-Math.exp(this.log - termLog));
      this.sign = termSign;
    } else {
      this.log = this.log + Math.log1p(-Math.exp(termLog - this.log));
    }
  }

  /** The sum's sign: 1, -1, or 0 for an exact zero. */
  get resultSign(): number {
    return this.sign;
  }

  /** log|sum|; -Infinity for zero. */
  get resultLog(): number {
    return this.log;
  }
}

// Stirling series coefficients B_{2k} / (2k (2k-1)) for log Gamma, k = 1..7 (exact rationals from the Bernoulli numbers).
const STIRLING = [1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188, -691 / 360360, 1 / 156];

/**
 * log Gamma(x) for x > 0. Shifts x up to >= 24 with the recurrence Gamma(x+1) = x Gamma(x), then applies the Stirling
 * series (Abramowitz & Stegun 6.1.40) to seven terms; the truncation error there is below 1e-22, so the result is
 * accurate to a few ulps of its magnitude.
 */
export function logGamma(x: number): number {
  if (!(x > 0)) return NaN;
  if (x === Infinity) return Infinity;
  let shift = 0;
  let product = 1;
  let z = x;
  while (z < 24) {
    product *= z;
    z += 1;
    // Keep the running product far from overflow; fold it into the log early.
    if (product > 1e250) {
      shift += Math.log(product);
      product = 1;
    }
  }
  shift += Math.log(product);
  const inv = 1 / z;
  const inv2 = inv * inv;
  let series = 0;
  let power = inv;
  for (const c of STIRLING) {
    series += c * power;
    power *= inv2;
  }
  return (z - 0.5) * Math.log(z) - z + HALF_LOG_TWO_PI + series - shift;
}

// Cache of log(n!) for the integer-order binomial sums; orders in the default grid stay below 1025.
const LOG_FACTORIAL_CACHE_SIZE = 4097;
let logFactorialCache: Float64Array | undefined;

/** log(n!) for a non-negative integer n. */
export function logFactorial(n: number): number {
  if (n < LOG_FACTORIAL_CACHE_SIZE) {
    if (logFactorialCache === undefined) {
      logFactorialCache = new Float64Array(LOG_FACTORIAL_CACHE_SIZE);
      for (let k = 2; k < LOG_FACTORIAL_CACHE_SIZE; k++) logFactorialCache[k] = logGamma(k + 1);
    }
    return logFactorialCache[n]!;
  }
  return logGamma(n + 1);
}

/** log C(n, k) for integers 0 <= k <= n. */
export function logBinomial(n: number, k: number): number {
  return logFactorial(n) - logFactorial(k) - logFactorial(n - k);
}

/**
 * erfc(x) for 0 <= x < 2 through erf's everywhere-positive series erf(x) = 2/sqrt(pi) exp(-x^2) sum (2x^2)^n x / (2n+1)!!
 * (Abramowitz & Stegun 7.1.6); no cancellation inside the sum, and 1 - erf loses at most ~2.3 digits at x = 2.
 */
function erfcSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return 1 - (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum;
}

/**
 * log(erfc(x) * sqrt(pi) * exp(x^2)) for x >= 2, from the continued fraction
 * erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))) (A&S 7.1.14), evaluated with the modified
 * Lentz method. Working with the scaled value keeps huge x (where erfc underflows) exact in log space.
 */
function logScaledErfcContinuedFraction(x: number): number {
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let j = 1; j < 5000; j++) {
    const a = j / 2;
    d = x + a * d;
    d = Math.abs(d) < tiny ? tiny : d;
    d = 1 / d;
    c = x + a / c;
    c = Math.abs(c) < tiny ? tiny : c;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return -Math.log(f);
}

/** log(erfc(x)) for any real x, accurate for very large x where erfc(x) underflows (needed by MTZ 2019 section 3.3). */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x === Infinity) return -Infinity;
  if (x === -Infinity) return Math.LN2;
  if (x < 0) {
    // erfc(x) = 2 - erfc(-x), which lies in (1, 2): no cancellation.
    const y = -x;
    const tail = y < 2 ? erfcSeries(y) : Math.exp(logScaledErfcContinuedFraction(y) - y * y - LOG_SQRT_PI);
    return Math.log(2 - tail);
  }
  if (x < 2) return Math.log(erfcSeries(x));
  return logScaledErfcContinuedFraction(x) - x * x - LOG_SQRT_PI;
}
