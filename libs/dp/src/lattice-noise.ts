// The Gaussian mechanism on a sum, computed on the lattice γZ so that no floating-point rounding of the noise or of
// its addition can leak the low-order bits of the data (Mironov, "On significance of the least significant bits for
// differential privacy", CCS 2012). Used by DP-SGD in the silo (the sum of clipped per-example gradients) and by
// DP-FedAvg at the hub (the sum of clipped silo updates). See docs/adr/0005-exact-noise-sampler.md, "Noise on the
// lattice", for what this does and does not protect.
//
// The mechanism, for a sum s ∈ R^d whose L2 sensitivity is C (one record, or one silo):
//   1. γ = 2^(floor(log2(σC)) − b), b = granularityBits (default 24): a power of two, so s_i / γ and k·γ are exact
//      float64 operations (exponent shifts) and σC/γ ∈ [2^b, 2^(b+1)).
//   2. k_i = round(s_i / γ) (to nearest, ties to even), an integer held exactly in a float64. Each coordinate moves by at most γ/2, so two
//      neighbouring sums' roundings differ by at most ||s − s'|| + γ√d ≤ C + γ√d in L2: the sensitivity in lattice
//      units is Δ_L = C/γ + √d.
//   3. z_i ~ N_Z(0, σ_L²), the exact discrete Gaussian (Canonne, Kamath, Steinke, NeurIPS 2020) with the integer
//      σ_L ≥ σ·Δ_L = σ·(C/γ + √d): the noise multiplier against the inflated sensitivity is never below the accounted
//      σ. Both neighbours' rounded sums are integer vectors, the case CKS20 analyse; ADR 0003 ("Privacy of the
//      discrete mechanism") argues why the continuous Gaussian's accounting then holds.
//   4. Release (k_i + z_i)·γ: |s_i/γ| < 2^51 and |z_i| < 2^52 are checked, so the integer sum is exact and below
//      2^53, and the product by the power of two γ is exact. Every released value is a lattice point, a function of
//      the integers only.
// Why b = 24: the inflation of the noise over σC is γ√d/C = σ√d·2^-b·(1..2), at most 6·10^-5 for σ = 1 and a
// million parameters; and the lattice integers |s_i|/γ < |s_i|/(σC)·2^(b+1) stay below 2^51 while |s_i| < 2^26·σC
// (for DP-SGD, a batch of up to 2^26·σ records at the clipping norm). Finer lattices buy nothing measurable; coarser
// ones cost ε through the √d term (ADR 0005).

import { DEFAULT_GRANULARITY_BITS, noiseLattice } from './gaussian-noise';
import { KARNEY_BLOCKS, KarneyDiscreteGaussianSampler, MAX_KARNEY_SIGMA } from './karney-discrete-gaussian';
import { PrivacyParameterError, PrivacyParameterErrorCode } from './privacy-parameter.exception';
import { defaultRandomSource, type RandomSource } from './random-source';

/** Bound on |noise_i|: integers below it are exact in float64, and so is their sum with a rounded sum below 2^51. */
export const MAX_LATTICE_MAGNITUDE = 2 ** 52;
/** Bound on |sums_i / γ|: below it, rounding by ROUNDING_SHIFT is exact. */
export const MAX_LATTICE_SUM = 2 ** 51;
/**
 * 1.5·2^52: for |x| < 2^51, x + 1.5·2^52 lies in [2^52, 2^53), where doubles are the integers, so the addition rounds
 * x to the nearest integer (ties to even, IEEE 754) and subtracting the shift back is exact. Several times faster
 * than Math.round on the 2-core benchmark machine, which matters at 8 million coordinates per epoch.
 */
const ROUNDING_SHIFT = 1.5 * 2 ** 52;

/** What a lattice Gaussian mechanism on a sum is asked to guarantee. */
export interface LatticeNoiseParameters {
  /** C: L2 sensitivity of the sum before rounding (one record's or one silo's clipped contribution). */
  readonly clipNorm: number;
  /** σ: the accounted noise multiplier, relative to C. Must be > 0 (σ = 0 is not a mechanism). */
  readonly noiseMultiplier: number;
  /** d: the number of coordinates of the sum (every one is rounded, so √d enters the sensitivity). */
  readonly dimension: number;
  /** b in γ = 2^(floor(log2 σC) − b); an integer in [8, 30], default 24. */
  readonly granularityBits?: number;
}

/** The lattice and the integer noise of one mechanism; also its audit trace (plain JSON-safe numbers). */
export interface LatticeNoisePlan {
  readonly mechanism: 'discrete-gaussian-lattice';
  readonly clipNorm: number;
  readonly noiseMultiplier: number;
  readonly dimension: number;
  /** γ: the lattice spacing, a power of two, in the units of the sum. */
  readonly granularity: number;
  readonly granularityBits: number;
  /** Δ = C + γ√d: the L2 sensitivity of the rounded sum, in the units of the sum. */
  readonly sensitivity: number;
  /** σ_L: the integer stddev parameter of the noise in lattice units, a multiple of 16, ≥ σ·(C/γ + √d). */
  readonly latticeSigma: number;
  /** σ_L·γ: the noise stddev parameter actually used, in the units of the sum (≥ σ·Δ ≥ σC). */
  readonly effectiveStddev: number;
}

function invalid(code: PrivacyParameterErrorCode, parameter: string, message: string): never {
  throw new PrivacyParameterError(code, parameter, message);
}

/**
 * The lattice and the integer noise for a Gaussian mechanism of multiplier σ on a d-dimensional sum of sensitivity C,
 * accounting for the rounding (Δ = C + γ√d) so that the accounted σ holds (module comment; Canonne, Kamath, Steinke
 * 2020). Throws PrivacyParameterError on bad parameters, or when σ_L would exceed the exact sampler's 2^31.
 */
export function latticeNoisePlan(parameters: LatticeNoiseParameters): LatticeNoisePlan {
  const { clipNorm, noiseMultiplier, dimension } = parameters;
  const granularityBits = parameters.granularityBits ?? DEFAULT_GRANULARITY_BITS;
  if (!(typeof clipNorm === 'number' && Number.isFinite(clipNorm) && clipNorm > 0)) {
    invalid(PrivacyParameterErrorCode.InvalidClipNorm, 'clipNorm', `clipNorm must be a finite number > 0`);
  }
  if (!(typeof noiseMultiplier === 'number' && Number.isFinite(noiseMultiplier) && noiseMultiplier > 0)) {
    invalid(
      PrivacyParameterErrorCode.InvalidNoiseMultiplier,
      'noiseMultiplier',
      'noiseMultiplier must be a finite number > 0 for lattice noise',
    );
  }
  if (!(Number.isSafeInteger(dimension) && dimension >= 1)) {
    invalid(PrivacyParameterErrorCode.InvalidOption, 'dimension', 'dimension must be a positive integer');
  }
  const stddev = noiseMultiplier * clipNorm;
  // Validates granularityBits and σC; γ is the same power of two gaussianNoise would use for σC.
  const granularity = noiseLattice(stddev, granularityBits).granularity;
  // C/γ is exact (power-of-two scaling). The float64 evaluation of σ·(C/γ + √d) has three roundings (sqrt, add,
  // multiply), each a relative 2^-53 at most: the factor 1 + 2^-50 covers them, so the ceiling is ≥ the exact value.
  const exactish = noiseMultiplier * (clipNorm / granularity + Math.sqrt(dimension));
  const latticeSigma = Math.ceil((exactish * (1 + 2 ** -50)) / KARNEY_BLOCKS) * KARNEY_BLOCKS;
  if (!(latticeSigma <= MAX_KARNEY_SIGMA)) {
    invalid(
      PrivacyParameterErrorCode.InvalidOption,
      'granularityBits',
      `lattice sigma ${latticeSigma} exceeds the exact sampler's ${MAX_KARNEY_SIGMA}: lower granularityBits ` +
        `(σ·√d = ${noiseMultiplier * Math.sqrt(dimension)} is too large for this lattice)`,
    );
  }
  return {
    mechanism: 'discrete-gaussian-lattice',
    clipNorm,
    noiseMultiplier,
    dimension,
    granularity,
    granularityBits,
    sensitivity: clipNorm + granularity * Math.sqrt(dimension),
    latticeSigma,
    effectiveStddev: latticeSigma * granularity,
  };
}

/**
 * `length` independent draws of the exact discrete Gaussian N_Z(0, latticeSigma²) (Karney 2016, Algorithm D), as
 * integer-valued doubles: the noise latticeNoise adds. latticeSigma must be an integer in [1, 2^31].
 */
export function latticeIntegers(length: number, latticeSigma: number, rng?: RandomSource): Float64Array {
  if (!(Number.isSafeInteger(length) && length >= 0)) {
    invalid(PrivacyParameterErrorCode.InvalidOption, 'length', `length must be a non-negative integer`);
  }
  if (!(Number.isInteger(latticeSigma) && latticeSigma >= 1 && latticeSigma <= MAX_KARNEY_SIGMA)) {
    invalid(
      PrivacyParameterErrorCode.InvalidStddev,
      'latticeSigma',
      `latticeSigma must be an integer in [1, ${MAX_KARNEY_SIGMA}]; got ${String(latticeSigma)}`,
    );
  }
  const out = new Float64Array(length);
  new KarneyDiscreteGaussianSampler(latticeSigma, rng ?? defaultRandomSource()).fill(out, 1);
  return out;
}

/**
 * The released sum: (round(sums_i / γ) + noise_i)·γ for every coordinate, exact in float64 (module comment, steps 2
 * and 4). `noise` must hold plan.dimension integers drawn from N_Z(0, plan.latticeSigma²) (latticeIntegers, or the
 * GaussianNoiseWorker's drawIntegers). Fails closed: a non-finite sum or one of 2^51 lattice units or more, a
 * non-integer noise value or one of magnitude 2^52 or more throws instead of releasing a value that is not exactly on
 * the lattice.
 * `out` may be `sums` itself when that is a Float64Array.
 */
export function latticeNoise(
  sums: Float32Array | Float64Array,
  plan: LatticeNoisePlan,
  noise: Float64Array,
  out: Float64Array = new Float64Array(sums.length),
): Float64Array {
  const d = plan.dimension;
  if (sums.length !== d || out.length !== d) {
    invalid(PrivacyParameterErrorCode.InvalidOption, 'sums', `sums and out must hold ${d} values`);
  }
  if (!(noise instanceof Float64Array) || noise.length !== d) {
    invalid(PrivacyParameterErrorCode.InvalidOption, 'noise', `noise must be a Float64Array of ${d} integers`);
  }
  const gamma = plan.granularity;
  for (let i = 0; i < d; i++) {
    // Exact: dividing by a power of two only shifts the exponent (a non-finite quotient fails the check below).
    const x = sums[i]! / gamma;
    const k = x + ROUNDING_SHIFT - ROUNDING_SHIFT;
    const z = noise[i]!;
    // |x| < 2^51, |z| < 2^52 and z an integer (NaN fails every comparison): k + z is an exact integer below 2^53.
    // One combined test keeps the hot loop short; the slow path says which check failed.
    if (!(x < MAX_LATTICE_SUM && x > -MAX_LATTICE_SUM && Math.abs(z) < MAX_LATTICE_MAGNITUDE && Math.floor(z) === z)) {
      refuse(i, x, gamma);
    }
    out[i] = (k + z) * gamma;
  }
  return out;
}

/** Why latticeNoise refused coordinate i. */
function refuse(i: number, x: number, gamma: number): never {
  if (!(Math.abs(x) < MAX_LATTICE_SUM)) {
    invalid(
      PrivacyParameterErrorCode.NonFiniteValue,
      'sums',
      `sums[${i}] is not finite or too large for the noise lattice (|sum / ${gamma}| must stay below 2^51)`,
    );
  }
  invalid(PrivacyParameterErrorCode.InvalidOption, 'noise', `noise[${i}] is not an integer below 2^52`);
}

/**
 * The whole mechanism in one synchronous call (the hub's DP-FedAvg, one release per round): plan the lattice for
 * (C, σ, d = sums.length), draw the integers from the CSPRNG (or `rng`, tests only) and release the noisy sum.
 */
export function latticeNoisySum(
  sums: Float32Array | Float64Array,
  parameters: Omit<LatticeNoiseParameters, 'dimension'>,
  rng?: RandomSource,
): { readonly sum: Float64Array; readonly plan: LatticeNoisePlan } {
  const plan = latticeNoisePlan({ ...parameters, dimension: sums.length });
  const noise = latticeIntegers(plan.dimension, plan.latticeSigma, rng);
  return { sum: latticeNoise(sums, plan, noise, noise), plan };
}
