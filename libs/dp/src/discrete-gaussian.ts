// Exact sampling of the discrete Gaussian N_Z(0, sigma^2), P[X = x] proportional to exp(-x^2 / (2 sigma^2)) on the
// integers, following C. Canonne, G. Kamath, T. Steinke, "The Discrete Gaussian for Differential Privacy", NeurIPS
// 2020 (arXiv:2004.00010), Algorithms 1 (Bernoulli(exp(-gamma))), 2 (discrete Laplace) and 3 (discrete Gaussian).
// Every probability is a rational number and every coin is decided by exact integer comparison, so no floating-point
// rounding can bias the output (the failure mode of Mironov 2012). sigma^2 is given as an exact rational of BigInts.

import { PrivacyParameterError, PrivacyParameterErrorCode } from './privacy-parameter.exception';
import { randomBit, type RandomSource, uniformInt } from './random-source';

const TWO_POW_53 = 9_007_199_254_740_992;

/** An exact positive rational number numerator / denominator. */
export interface ExactRational {
  readonly numerator: bigint;
  readonly denominator: bigint;
}

/**
 * Bernoulli(numerator / denominator) for 0 <= numerator, 0 < denominator: compares a uniform U in [0, 1) with p by
 * generating p's binary expansion 32 bits at a time by long division, drawing 32 random bits per round. Exact.
 */
export function bernoulliRational(rng: RandomSource, numerator: bigint, denominator: bigint): boolean {
  if (numerator <= 0n) return false;
  if (numerator >= denominator) return true;
  let remainder = numerator;
  for (;;) {
    remainder <<= 32n;
    const digit = remainder / denominator;
    remainder -= digit * denominator;
    const word = rng.nextUint32();
    const d = Number(digit);
    if (word < d) return true;
    if (word > d) return false;
    // Same 32 bits so far: U < p iff the remaining expansion of p is still above U's; if p ends here, U >= p.
    if (remainder === 0n) return false;
  }
}

/** Bernoulli(exp(-1)) by CKS20 Algorithm 1 with gamma = 1: stop at the first failure of Bernoulli(1/k); odd k wins. */
export function bernoulliExpMinusOne(rng: RandomSource): boolean {
  let k = 1;
  while (uniformInt(rng, k) === 0) k++;
  return k % 2 === 1;
}

/** Bernoulli(exp(-u/t)) for integers 0 <= u <= t < 2^40 (CKS20 Algorithm 1, gamma = u/t in [0, 1]), in exact integers. */
function bernoulliExpMinusSmall(rng: RandomSource, u: number, t: number): boolean {
  let k = 1;
  // Bernoulli(gamma / k) = [uniform on [0, t k) < u].
  while (t * k <= TWO_POW_53 && uniformInt(rng, t * k) < u) k++;
  if (t * k > TWO_POW_53) {
    // Unreachable in practice (needs k > 2^13 consecutive successes); finish exactly with BigInt.
    while (bernoulliRational(rng, BigInt(u), BigInt(t) * BigInt(k))) k++;
  }
  return k % 2 === 1;
}

/** Bernoulli(exp(-numerator/denominator)) for any rational gamma >= 0 (CKS20 Algorithm 1, both cases). */
export function bernoulliExpMinusRational(rng: RandomSource, numerator: bigint, denominator: bigint): boolean {
  let n = numerator;
  // exp(-gamma) = exp(-1)^floor-ish * exp(-rest): peel off whole units while gamma > 1.
  while (n > denominator) {
    if (!bernoulliExpMinusOne(rng)) return false;
    n -= denominator;
  }
  let k = 1n;
  while (bernoulliRational(rng, n, denominator * k)) k++;
  return k % 2n === 1n;
}

/**
 * The discrete Laplace distribution with integer scale t, P[X = x] proportional to exp(-|x| / t) (CKS20 Algorithm 2).
 * t must be an integer in [1, 2^40] so all intermediate values are exact doubles.
 */
export function sampleDiscreteLaplace(rng: RandomSource, t: number): number {
  for (;;) {
    const u = uniformInt(rng, t);
    if (!bernoulliExpMinusSmall(rng, u, t)) continue;
    let v = 0;
    while (bernoulliExpMinusOne(rng)) v++;
    const x = u + t * v;
    const negative = randomBit(rng) === 1;
    if (negative && x === 0) continue;
    return negative ? -x : x;
  }
}

/** floor(sqrt(n)) for a non-negative BigInt, by Newton's method. */
export function bigintSqrtFloor(n: bigint): bigint {
  if (n < 2n) return n;
  const estimate = Math.sqrt(Number(n));
  // Newton from an over-estimate decreases monotonically to the root; the double estimate is within a unit for n < 2^100.
  let x = Number.isFinite(estimate) ? BigInt(Math.ceil(estimate)) + 1n : n;
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) break;
    x = y;
  }
  while (x * x > n) x--;
  while ((x + 1n) * (x + 1n) <= n) x++;
  return x;
}

/**
 * A sampler for N_Z(0, sigma^2) with sigma^2 an exact rational (CKS20 Algorithm 3): propose Y from the discrete
 * Laplace with scale t = floor(sigma) + 1 and accept with probability exp(-(|Y| - sigma^2/t)^2 / (2 sigma^2)).
 * sigma must stay below 2^40 so proposals are exact doubles; the expected number of proposals is below 2.
 */
export class DiscreteGaussianSampler {
  private readonly t: number;
  private readonly tBig: bigint;
  private readonly acceptDenominator: bigint;

  constructor(
    readonly sigmaSquared: ExactRational,
    private readonly rng: RandomSource,
  ) {
    const { numerator, denominator } = sigmaSquared;
    if (typeof numerator !== 'bigint' || typeof denominator !== 'bigint' || numerator <= 0n || denominator <= 0n) {
      throw new PrivacyParameterError(
        PrivacyParameterErrorCode.InvalidStddev,
        'sigmaSquared',
        'sigmaSquared must be a positive rational of BigInts',
      );
    }
    // floor(sqrt(a/b)) = floor(sqrt(floor(a/b))).
    this.tBig = bigintSqrtFloor(numerator / denominator) + 1n;
    if (this.tBig > 1n << 40n) {
      throw new PrivacyParameterError(
        PrivacyParameterErrorCode.InvalidStddev,
        'sigmaSquared',
        'the discrete Gaussian sampler supports sigma < 2^40 (in lattice units)',
      );
    }
    this.t = Number(this.tBig);
    // gamma = (|Y| - s/t)^2 / (2 s) with s = num/den equals (|Y| t den - num)^2 / (2 num den t^2).
    this.acceptDenominator = 2n * numerator * denominator * this.tBig * this.tBig;
  }

  /** One draw from N_Z(0, sigma^2), as an exact integer-valued double. */
  sample(): number {
    const { numerator, denominator } = this.sigmaSquared;
    for (;;) {
      const y = sampleDiscreteLaplace(this.rng, this.t);
      const centred = BigInt(Math.abs(y)) * this.tBig * denominator - numerator;
      if (bernoulliExpMinusRational(this.rng, centred * centred, this.acceptDenominator)) return y;
    }
  }
}
