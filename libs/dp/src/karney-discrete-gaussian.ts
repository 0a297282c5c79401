// Exact sampling of the discrete Gaussian N_Z(0, s^2) for an integer s, after C. F. F. Karney, "Sampling exactly from
// the normal distribution", ACM TOMS 42(1), 2016 (arXiv:1303.6257), Algorithm D, with mu = 0 and two changes for
// speed that keep it exact: sigma is cut into m blocks instead of one, and the block index comes from an exact table.
// Like Canonne-Kamath-Steinke 2020 every decision is an exact comparison of uniform random words, so no rounding can
// bias the output (Mironov 2012); unlike CKS20's acceptance test nothing grows with sigma: all arithmetic stays below
// 2^53 and a draw costs about four 32-bit words whatever s is. This is the sampler behind Tessera's DP noise
// (gaussian-noise.ts); DiscreteGaussianSampler (CKS20) remains for rational sigma^2 and as a cross-check in tests.
//
// Derivation (lattice units). Let m divide s and w = s / m. Write a non-negative integer i as i = k w + j with k >= 0
// and 0 <= j < w, and put x = j / w in [0, 1). Then i / s = (k + x) / m and
//   exp(-i^2 / (2 s^2)) = exp(-k^2 / (2 m^2)) * exp(-x (2k + x) / (2 m^2)).
// So: draw k with P(k) proportional to exp(-k^2 / (2 m^2)) (half-gaussian-table.ts; Karney's m = 1 draws it with
// exp(-1/2) coins instead), draw j uniformly from [0, w), and keep the pair with probability exp(-x (2k + x) / (2 m^2)):
// the product of r = floor(k / m^2) + 1 independent coins of probability exp(-x y) with y = (2k + x) / (2 m^2 r) < 1,
// each decided by von Neumann's runs: with uniforms U_1, V_1, U_2, V_2, ... the longest run x > U_1 > U_2 > ... > U_n
// with every V_l < y has P(n >= l) = (x y)^l / l!, so "n even" has probability sum_l (-x y)^l / l! = exp(-x y).
// Finally pick a sign, rejecting "-0" so zero is not counted twice. With m = 16 the pair is kept ~97% of the time.
//
// Uniform deviates are never materialised as floats. A uniform U in [0, 1) is drawn as its first base-w digit
// d = floor(U w) (one uniform word below w) plus, only when two digits tie, further 32-bit words of its fraction. Then
// U < j / w iff d < j exactly, and two deviates compare digit first, fraction words next (ties have probability 1/w).

import { GUIDE_SHIFT, halfGaussianTable, type HalfGaussianTable } from './half-gaussian-table';
import { PrivacyParameterError, PrivacyParameterErrorCode } from './privacy-parameter.exception';
import { fillUint32, type RandomSource, uniformInt } from './random-source';

const TWO_POW_32 = 4_294_967_296;
const WORDS_PER_REFILL = 16_384;
/** Words the inlined common path of fill() may read without checking for a refill. */
const FAST_PATH_WORDS = 4;
/** Largest supported s: a base-w digit must come from one 32-bit word, and values must stay exact doubles. */
export const MAX_KARNEY_SIGMA = 2 ** 31;
/** Blocks per sigma used when s allows it (s divisible by 16): high acceptance, a 161-entry table. */
export const KARNEY_BLOCKS = 16;

/**
 * w mod n for integers 0 <= w < 2^32 and 1 <= n <= 2^32, without `%` on doubles (a slow fmod call when w >= 2^31).
 * Exact: w / n is correctly rounded, within (w / n) 2^-53 < 2^-21 / n of the true quotient, while a quotient that is
 * not an integer is at least 1 / n away from the next integer, so the floor is never rounded up.
 */
function remainder(w: number, n: number): number {
  return w - Math.floor(w / n) * n;
}

/** The number of blocks for s: the largest power of two up to KARNEY_BLOCKS that divides s. */
function blocksFor(s: number): number {
  let m = KARNEY_BLOCKS;
  while (s % m !== 0) m /= 2;
  return m;
}

/**
 * A sampler for N_Z(0, s^2), P[X = i] proportional to exp(-i^2 / (2 s^2)), for an integer 1 <= s <= 2^31 (Karney 2016,
 * Algorithm D with mu = 0, m blocks per sigma). Exact: the output distribution is the discrete Gaussian itself. Fastest
 * when 16 divides s (gaussian-noise.ts rounds its lattice sigma up to such a value).
 */
export class KarneyDiscreteGaussianSampler {
  /** m: blocks per sigma. */
  readonly blocks: number;
  /** w = s / m: the block width, and the base of the uniform deviates' first digit. */
  private readonly width: number;
  private readonly mSquared: number;
  private readonly table: HalfGaussianTable;
  private readonly words = new Uint32Array(WORDS_PER_REFILL);
  private position = WORDS_PER_REFILL;
  /** Rejection bound for a uniform digit below w: the largest multiple of w not above 2^32. */
  private readonly digitLimit: number;
  /** Rejection bound for a digit below w plus a sign bit: the largest multiple of 2w not above 2^32. */
  private readonly signedDigitLimit: number;
  /** 2 m^2 - 1: belowY's modulus 2 m^2 r is a power of two when r = 1 (k < m^2, i.e. always but for ~e^-(m^2/2)). */
  private readonly pairMask: number;
  /** Fraction words revealed so far of the previous deviate in the current von Neumann run. */
  private previousFraction: number[] = [];
  private currentFraction: number[] = [];
  private readonly nextWord = (): number => this.word();
  /** The same word stream as a RandomSource, for the rare exact paths that take one. */
  private readonly wordSource: RandomSource = { nextUint32: this.nextWord };

  constructor(
    /** s, the standard-deviation parameter in lattice units. */
    readonly sigma: number,
    private readonly rng: RandomSource,
  ) {
    if (!Number.isInteger(sigma) || sigma < 1 || sigma > MAX_KARNEY_SIGMA) {
      throw new PrivacyParameterError(
        PrivacyParameterErrorCode.InvalidStddev,
        'sigma',
        `the exact discrete Gaussian sampler needs an integer sigma in [1, 2^31] (lattice units); got ${String(sigma)}`,
      );
    }
    this.blocks = blocksFor(sigma);
    this.width = sigma / this.blocks;
    this.mSquared = this.blocks * this.blocks;
    this.table = halfGaussianTable(this.blocks);
    this.digitLimit = TWO_POW_32 - (TWO_POW_32 % this.width);
    this.signedDigitLimit = TWO_POW_32 - (TWO_POW_32 % (2 * this.width));
    this.pairMask = 2 * this.mSquared - 1;
  }

  /** One draw from N_Z(0, s^2), as an exact integer-valued double. */
  sample(): number {
    for (;;) {
      const k = this.table.sample(this.word(), this.nextWord, this.wordSource);
      // One word gives both j, uniform on [0, w), and an independent sign: w' < 2w * floor(2^32 / 2w) is uniform on
      // pairs (q, j) with q = floor(w' / w) taking as many even as odd values.
      let signed: number;
      do signed = this.word();
      while (signed >= this.signedDigitLimit);
      const quotient = Math.floor(signed / this.width);
      const j = signed - quotient * this.width;
      if (j !== 0 && !this.acceptsFraction(k, j)) continue;
      const negative = (quotient & 1) === 1;
      if (negative && k === 0 && j === 0) continue;
      const magnitude = k * this.width + j;
      if (!Number.isSafeInteger(magnitude)) {
        // Needs k > 2^22 blocks, an event of probability below exp(-2^30): refuse rather than round.
        throw new RangeError('discrete Gaussian draw beyond 2^53');
      }
      return negative ? -magnitude : magnitude;
    }
  }

  /**
   * Fills `out` with independent draws times `scale` (a power of two keeps every product exact in float64; a
   * Float32Array stores each product rounded to float32). The same algorithm as sample(), with the common path of a
   * proposal — block from the table's first word, digit and sign from one word, a fraction test decided by its first
   * two words — inlined into one loop; anything rarer goes through the same methods sample() uses.
   */
  fill(out: Float64Array | Float32Array, scale = 1): void {
    const words = this.words;
    const { lowWord, highWord, guide, size } = this.table;
    const width = this.width;
    const signedDigitLimit = this.signedDigitLimit;
    const digitLimit = this.digitLimit;
    const pairMask = this.pairMask;
    const mSquared = this.mSquared;
    let position = this.position;
    for (let i = 0; i < out.length; i++) {
      for (;;) {
        // The inlined path reads at most FAST_PATH_WORDS words: refill first if fewer remain (unread words are
        // simply never used, which does not bias anything).
        if (position > WORDS_PER_REFILL - FAST_PATH_WORDS) {
          fillUint32(this.rng, words);
          position = 0;
        }
        const first = words[position++]!;
        let k = guide[first >>> GUIDE_SHIFT]!;
        while (k < size && first >= highWord[k]!) k++;
        if (k === size || first >= lowWord[k]!) {
          this.position = position;
          k = this.table.resolveFrom(first, k, this.nextWord, this.wordSource);
          position = this.position;
        }
        const signed = words[position++]!;
        // A rejected word rejects the whole proposal: the event is independent of k, so k's law is unchanged.
        if (signed >= signedDigitLimit) continue;
        const quotient = Math.floor(signed / width);
        const j = signed - quotient * width;
        if (j !== 0) {
          let accepted = true;
          if (k >= mSquared) {
            this.position = position;
            accepted = this.acceptsFraction(k, j);
            position = this.position;
          } else {
            // One von Neumann run against x = j / w, y = (2k + x) / (2 m^2): usually decided by U_1 >= x, or by
            // U_1 < x with V_1's first base-2m^2 digit above 2k (both mean n = 0, accept).
            const u = words[position++]!;
            if (u >= digitLimit) {
              this.position = position;
              accepted = this.bernoulliExpMinusXY(k, j, mSquared * 2);
              position = this.position;
            } else {
              const d = u - Math.floor(u / width) * width;
              if (d < j) {
                const l = words[position++]! & pairMask;
                if (l <= 2 * k) {
                  this.position = position;
                  // l < 2k: V_1 < y. l = 2k: V_1 < y iff the rest of V_1, a fresh uniform, is below x.
                  accepted = l < 2 * k || this.digit() < j ? this.continueRun(k, j, mSquared * 2, d) : true;
                  position = this.position;
                }
              }
            }
          }
          if (!accepted) continue;
        }
        const negative = (quotient & 1) === 1;
        if (negative && k === 0 && j === 0) continue;
        const magnitude = k * width + j;
        if (!Number.isSafeInteger(magnitude)) throw new RangeError('discrete Gaussian draw beyond 2^53');
        out[i] = (negative ? -magnitude : magnitude) * scale;
        break;
      }
    }
    this.position = position;
  }

  private word(): number {
    if (this.position === WORDS_PER_REFILL) {
      fillUint32(this.rng, this.words);
      this.position = 0;
    }
    return this.words[this.position++]!;
  }

  /** A uniform integer below n for 1 <= n <= 2^53, by rejection (no modulo bias). */
  private below(n: number): number {
    if (n > TWO_POW_32) return uniformInt(this.wordSource, n);
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    for (;;) {
      const w = this.word();
      if (w < limit) return remainder(w, n);
    }
  }

  /** The first base-w digit of a fresh uniform deviate: uniform on [0, w). */
  private digit(): number {
    for (;;) {
      const w = this.word();
      if (w < this.digitLimit) return remainder(w, this.width);
    }
  }

  /** True with probability exp(-x (2k + x) / (2 m^2)) for x = j / w: r coins of exp(-x (2k + x) / (2 m^2 r)). */
  private acceptsFraction(k: number, j: number): boolean {
    const r = Math.floor(k / this.mSquared) + 1;
    const modulus = 2 * this.mSquared * r;
    for (let trial = 0; trial < r; trial++) if (!this.bernoulliExpMinusXY(k, j, modulus)) return false;
    return true;
  }

  /**
   * True with probability exp(-x y), x = j / w, y = (2k + x) / modulus: the length n of the longest run
   * x > U_1 > ... > U_n with V_1, ..., V_n < y is even.
   */
  private bernoulliExpMinusXY(k: number, j: number, modulus: number): boolean {
    const first = this.digit();
    // U_1 < x = j / w iff its first base-w digit is below j.
    if (first >= j || !this.belowY(k, j, modulus)) return true;
    return this.continueRun(k, j, modulus, first);
  }

  /**
   * The rest of a von Neumann run whose first step succeeded (U_1 < x with first digit `firstDigit`, V_1 < y): true iff
   * the final run length n is even.
   */
  private continueRun(k: number, j: number, modulus: number, firstDigit: number): boolean {
    let previousDigit = firstDigit;
    let previousRevealed = false;
    let n = 1;
    for (;;) {
      const d = this.digit();
      if (d > previousDigit) break;
      if (d === previousDigit) {
        if (!previousRevealed) this.previousFraction.length = 0;
        if (!this.tiedFractionIsBelow()) break;
        previousRevealed = true;
      } else {
        previousRevealed = false;
      }
      previousDigit = d;
      if (!this.belowY(k, j, modulus)) break;
      n++;
    }
    return (n & 1) === 0;
  }

  /**
   * After a digit tie, decides whether the new deviate's fraction is below the previous one's, revealing words of both
   * as needed; on "below" the new deviate (with the words revealed) becomes the previous one.
   */
  private tiedFractionIsBelow(): boolean {
    const previous = this.previousFraction;
    const current = this.currentFraction;
    current.length = 0;
    for (let i = 0; ; i++) {
      if (i === previous.length) previous.push(this.word());
      const w = this.word();
      current.push(w);
      if (w !== previous[i]) {
        if (w > previous[i]!) return false;
        this.previousFraction = current;
        this.currentFraction = previous;
        return true;
      }
    }
  }

  /**
   * V < y = (2k + x) / modulus for a fresh uniform V, where modulus = 2 m^2 r >= 2k + 2: with l = floor(V modulus) it
   * holds for l < 2k, fails for l > 2k (as x < 1), and for l = 2k holds iff the rest of V, a fresh uniform, is below x.
   */
  private belowY(k: number, j: number, modulus: number): boolean {
    // 2 m^2 is a power of two (m is), so for r = 1 the low bits of one word are uniform below it.
    const l = modulus === this.pairMask + 1 ? this.word() & this.pairMask : this.below(modulus);
    if (l < 2 * k) return true;
    if (l > 2 * k) return false;
    return this.digit() < j;
  }
}
