// Exact sampling of k >= 0 with P(k) proportional to exp(-k^2 / (2 m^2)) for a small integer m, the "which block"
// step of the discrete Gaussian sampler (karney-discrete-gaussian.ts). The cumulative probabilities are irrational, so
// they are held as rigorous intervals [lo, hi] in fixed point with P bits, computed in BigInt at first use; a uniform
// deviate U (revealed 32 bits at a time) is compared against them and is resolved as soon as its revealed interval
// lies wholly on one side of a threshold's interval. With one word the answer is certain except with probability
// about 2^-31 per draw; then further words are revealed, and if P bits are ever not enough the table is recomputed
// with twice the precision. The result is therefore an exact sample, never an approximation, at the cost of one
// table lookup almost always. Values beyond the table (k > 10 m, probability < 2e-22) come from an exact rejection
// sampler on the tail.

import { bernoulliExpMinusRational } from './discrete-gaussian';
import type { RandomSource } from './random-source';

const INITIAL_PRECISION_BITS = 192;
/** The guide table indexes deviates by their first word's top 32 - GUIDE_SHIFT bits. */
export const GUIDE_SHIFT = 20;
/** Guard bits carried in the intermediate products so rounding in the recurrences stays far below 2^-P. */
const GUARD_BITS = 32;

export interface ThresholdBounds {
  /** P, the fixed-point precision of lo / hi. */
  readonly precision: number;
  /** lo[k] <= C_k * 2^P <= hi[k], where C_k = P(K' <= k) for k = 0..K. */
  readonly lo: readonly bigint[];
  readonly hi: readonly bigint[];
}

function ceilDiv(a: bigint, b: bigint): bigint {
  return (a + b - 1n) / b;
}

/**
 * Rigorous fixed-point bounds (scaled by 2^q) on exp(-1 / (2 m^2)) from the alternating Taylor series: partial sums
 * S_N of sum (-a)^n / n! bracket the limit with error below the next term.
 */
function expMinusHalfOverMSquared(m: number, q: number): { lo: bigint; hi: bigint } {
  const denominatorBase = 2n * BigInt(m) * BigInt(m); // a = 1 / denominatorBase
  // Exact partial sum as a rational sum_{n<=N} (-1)^n / (base^n n!), stopping once the next term is below 2^-(q+2).
  let termDenominator = 1n; // base^n n!
  let numerator = 0n; // S_N * commonDenominator, built incrementally with commonDenominator = termDenominator
  let n = 0;
  for (;;) {
    // Bring numerator to the denominator of term n, then add (-1)^n.
    if (n > 0) {
      const factor = denominatorBase * BigInt(n);
      numerator *= factor;
      termDenominator *= factor;
    }
    numerator += n % 2 === 0 ? 1n : -1n;
    const nextDenominator = termDenominator * denominatorBase * BigInt(n + 1);
    if (nextDenominator >> BigInt(q + 2) > 0n) {
      // |S_N - limit| <= 1 / nextDenominator < 2^-(q+2).
      const scale = 1n << BigInt(q);
      const lower = numerator * nextDenominator - termDenominator; // (S_N - 1/next) * termDenominator * next
      const upper = numerator * nextDenominator + termDenominator;
      const common = termDenominator * nextDenominator;
      return { lo: (lower * scale) / common, hi: ceilDiv(upper * scale, common) };
    }
    n++;
  }
}

function computeBounds(m: number, size: number, precision: number): ThresholdBounds {
  const q = precision + GUARD_BITS;
  const one = 1n << BigInt(q);
  const mulLo = (a: bigint, b: bigint): bigint => (a * b) >> BigInt(q);
  const mulHi = (a: bigint, b: bigint): bigint => ceilDiv(a * b, one);
  const e = expMinusHalfOverMSquared(m, q);
  const eSquared = { lo: mulLo(e.lo, e.lo), hi: mulHi(e.hi, e.hi) };
  // W_k = exp(-k^2 / (2 m^2)) = E^(k^2): W_{k+1} = W_k * E^(2k+1), with F_k = E^(2k+1) and F_{k+1} = F_k * E^2.
  let weight = { lo: one, hi: one };
  let factor = { lo: e.lo, hi: e.hi };
  const partialLo: bigint[] = [];
  const partialHi: bigint[] = [];
  let totalLo = 0n;
  let totalHi = 0n;
  // The table's thresholds need the partial sums up to K = size - 1; the normaliser needs the whole series: continue
  // until the remaining tail is below 2^-(precision + 16), so the bounds tighten as the precision grows.
  const negligible = 1n << BigInt(q - precision - 16);
  for (let k = 0; k < size || weight.hi >= negligible; k++) {
    totalLo += weight.lo;
    totalHi += weight.hi;
    if (k < size) {
      partialLo.push(totalLo);
      partialHi.push(totalHi);
    }
    weight = { lo: mulLo(weight.lo, factor.lo), hi: mulHi(weight.hi, factor.hi) };
    factor = { lo: mulLo(factor.lo, eSquared.lo), hi: mulHi(factor.hi, eSquared.hi) };
  }
  // weight now bounds W_{k+1} for the last k summed. The rest: sum_{i>k} W_i <= W_{k+1} / (1 - exp(-(k+1)/m^2))
  // <= W_{k+1} * (1 + m^2 / (k+1)), since 1 / (1 - e^-a) <= 1 + 1/a; k + 1 >= size.
  totalHi += ceilDiv(weight.hi * BigInt(size + m * m), BigInt(size));
  const scale = 1n << BigInt(precision);
  return {
    precision,
    lo: partialLo.map((s) => (s * scale) / totalHi),
    hi: partialHi.map((s) => ceilDiv(s * scale, totalLo)),
  };
}

/**
 * Exact sampler of k >= 0 with P(k) proportional to exp(-k^2 / (2 m^2)), for an integer 1 <= m <= 64. Share one table
 * per m (halfGaussianTable); draws take their randomness from the caller's word source.
 */
export class HalfGaussianTable {
  /** Thresholds cover k = 0..size-1; size = 10 m + 1. */
  readonly size: number;
  private bounds: ThresholdBounds;
  /**
   * Fast path, read directly by the sampler's inner loop: U < C_k is certain when U's first word w < lowWord[k], and
   * U >= C_k is certain when w >= highWord[k]. Between the two, call resolveFrom.
   */
  readonly lowWord: Float64Array;
  readonly highWord: Float64Array;
  /**
   * guide[b]: the first k whose threshold may lie above a deviate whose first word w has w >>> GUIDE_SHIFT = b. With
   * 4096 buckets for ~10 m thresholds most buckets hold none, so the scan from guide[b] usually stops at once.
   */
  readonly guide: Uint16Array;

  constructor(readonly m: number) {
    if (!Number.isInteger(m) || m < 1 || m > 64) throw new RangeError(`m must be an integer in [1, 64]; got ${m}`);
    this.size = 10 * m + 1;
    this.bounds = computeBounds(m, this.size, INITIAL_PRECISION_BITS);
    const shift = BigInt(INITIAL_PRECISION_BITS - 32);
    this.lowWord = Float64Array.from(this.bounds.lo, (lo) => Number(lo >> shift));
    this.highWord = Float64Array.from(this.bounds.hi, (hi) => Number(ceilDiv(hi, 1n << shift)));
    this.guide = new Uint16Array(2 ** (32 - GUIDE_SHIFT));
    let k = 0;
    for (let b = 0; b < this.guide.length; b++) {
      // Every deviate in bucket b has w >= b * 2^GUIDE_SHIFT: thresholds with highWord <= that are certainly below it.
      while (k < this.size && this.highWord[k]! <= b * 2 ** GUIDE_SHIFT) k++;
      this.guide[b] = k;
    }
  }

  /**
   * One exact draw, starting from the uniform word w; `word` returns further words of the same stream when w alone
   * cannot decide, and `rng` (the same stream again) serves the rare exact tail sampler.
   */
  sample(w: number, word: () => number, rng: RandomSource): number {
    let k = this.guide[w >>> GUIDE_SHIFT]!;
    while (k < this.size && w >= this.highWord[k]!) k++;
    return k < this.size && w < this.lowWord[k]! ? k : this.resolveFrom(w, k, word, rng);
  }

  /**
   * Slow path, for a first word w that is certainly at or above every threshold before k but not certainly below C_k
   * (or k = size): compares with more words of the same deviate, and goes to the tail beyond the table.
   */
  resolveFrom(firstWord: number, fromK: number, word: () => number, rng: RandomSource): number {
    if (fromK === this.size) return this.sampleTail(rng);
    let revealed = BigInt(firstWord); // U lies in [revealed, revealed + 1) * 2^-bits
    let bits = 32;
    let k = fromK;
    for (;;) {
      const { precision, lo, hi } = this.bounds;
      if (bits > precision - 8) {
        this.bounds = computeBounds(this.m, this.size, precision * 2);
        continue;
      }
      const shift = BigInt(precision - bits);
      if ((revealed + 1n) << shift <= lo[k]!) return k;
      if (revealed << shift >= hi[k]!) {
        k++;
        if (k === this.size) return this.sampleTail(rng);
        continue;
      }
      revealed = (revealed << 32n) | BigInt(word());
      bits += 32;
    }
  }

  /**
   * k > K = size - 1 (the event "beyond the table"), exactly: k = K + 1 + g with P(g) proportional to
   * exp(-((K+1+g)^2 - (K+1)^2) / (2 m^2)) = exp(-(K+1) g / m^2) * exp(-g^2 / (2 m^2)): a geometric proposal accepted
   * with probability exp(-g^2 / (2 m^2)), both by CKS20's exact Bernoulli(exp(-rational)).
   */
  sampleTail(rng: RandomSource): number {
    const first = BigInt(this.size);
    const mSquared = BigInt(this.m * this.m);
    for (;;) {
      let g = 0;
      while (bernoulliExpMinusRational(rng, first, mSquared)) g++;
      if (bernoulliExpMinusRational(rng, BigInt(g) * BigInt(g), 2n * mSquared)) return this.size + g;
    }
  }

  /** The current rigorous bounds lo[k] <= P(K' <= k) * 2^precision <= hi[k] (for audits and tests). */
  cumulativeBounds(): ThresholdBounds {
    return this.bounds;
  }
}

const tables = new Map<number, HalfGaussianTable>();

/** The shared table for m (built on first use: a few milliseconds of BigInt arithmetic). */
export function halfGaussianTable(m: number): HalfGaussianTable {
  let table = tables.get(m);
  if (table === undefined) {
    table = new HalfGaussianTable(m);
    tables.set(m, table);
  }
  return table;
}
