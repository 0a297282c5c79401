// Gaussian noise for DP-SGD and DP-FedAvg without the floating-point pitfall (Mironov 2012, "On significance of the
// least significant bits for differential privacy"): noise is gamma * N_Z(0, s^2), an exact discrete Gaussian
// (Canonne, Kamath, Steinke 2020) on the lattice gamma * Z, with gamma a power of two and s the integer lattice sigma
// (stddev / gamma rounded up to a multiple of 16), drawn by Karney's exact algorithm (karney-discrete-gaussian.ts).
// Values receiving noise are first rounded to the same lattice, so every output is a lattice point whose distribution
// depends on the input only through the rounded input: no low-order bits of the input survive. See
// docs/adr/0003-privacy-accountant.md and docs/adr/0005-exact-noise-sampler.md.

import { KARNEY_BLOCKS, KarneyDiscreteGaussianSampler } from './karney-discrete-gaussian';
import { PrivacyParameterError, PrivacyParameterErrorCode } from './privacy-parameter.exception';
import { defaultRandomSource, type RandomSource } from './random-source';

/**
 * Default lattice fineness: gamma = 2^(floor(log2 stddev) - 24), so stddev / gamma lies in [2^24, 2^25). At that scale the
 * discrete and continuous Gaussians are indistinguishable for accounting purposes, and rounding a d-dimensional vector
 * to the lattice moves it by at most gamma * sqrt(d) / 2 <= stddev * sqrt(d) * 2^-25 in L2.
 */
export const DEFAULT_GRANULARITY_BITS = 24;
const MIN_GRANULARITY_BITS = 8;
/** stddev / gamma < 2^31 keeps the lattice sigma within the exact sampler's range. */
const MAX_GRANULARITY_BITS = 30;

export interface NoiseOptions {
  /** Randomness; defaults to the process-wide node:crypto source. Inject a SeededRandomSource only in tests. */
  readonly rng?: RandomSource;
  /** gamma = 2^(floor(log2 stddev) - granularityBits); an integer in [8, 36], default 24. */
  readonly granularityBits?: number;
}

/** The lattice and exact discrete-Gaussian parameter used for a given stddev. */
export interface NoiseLattice {
  /** gamma: the lattice spacing, a power of two, in the same units as the stddev. */
  readonly granularity: number;
  readonly granularityBits: number;
  /**
   * s: the discrete Gaussian's sigma in lattice units, stddev / gamma rounded up to a multiple of 16 (the sampler's
   * block count). The noise drawn is never smaller than requested and at most 16 lattice units larger: a factor
   * 1 + 2^-20 at the default granularity.
   */
  readonly latticeSigma: number;
  /** s * gamma: the standard-deviation parameter of the noise actually drawn (>= stddev). */
  readonly effectiveStddev: number;
}

/** What addGaussianNoiseInPlace did, for the update's audit trace. */
export interface NoiseTrace {
  readonly mechanism: 'discrete-gaussian-lattice';
  /** Requested noise standard deviation (absolute units: noiseMultiplier * clipNorm). */
  readonly stddev: number;
  /** The standard-deviation parameter actually used, latticeSigma * granularity: >= stddev (see NoiseLattice). */
  readonly effectiveStddev: number;
  readonly granularity: number;
  readonly granularityBits: number;
  readonly length: number;
  /**
   * Extra L2 sensitivity from rounding to the lattice: two neighbouring inputs' roundings differ by at most
   * ||x - x'|| + granularity * sqrt(length). Account with clipNorm + roundingSensitivity as the sensitivity.
   */
  readonly roundingSensitivity: number;
}

function assertStddev(stddev: number): void {
  if (typeof stddev !== 'number' || !Number.isFinite(stddev) || stddev <= 0) {
    throw new PrivacyParameterError(
      PrivacyParameterErrorCode.InvalidStddev,
      'stddev',
      `stddev must be a finite number > 0 (noise multiplier times clipping norm); got ${String(stddev)}`,
    );
  }
}

function assertLength(length: number): void {
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new PrivacyParameterError(
      PrivacyParameterErrorCode.InvalidOption,
      'length',
      `length must be a non-negative integer; got ${String(length)}`,
    );
  }
}

/**
 * The noise lattice for `stddev`: gamma = 2^(floor(log2 stddev) - granularityBits) and the integer discrete-Gaussian
 * parameter s = ceil(stddev / (16 gamma)) * 16 (Canonne, Kamath, Steinke 2020, used at granularity gamma).
 */
export function noiseLattice(stddev: number, granularityBits: number = DEFAULT_GRANULARITY_BITS): NoiseLattice {
  assertStddev(stddev);
  if (
    !Number.isInteger(granularityBits) ||
    granularityBits < MIN_GRANULARITY_BITS ||
    granularityBits > MAX_GRANULARITY_BITS
  ) {
    throw new PrivacyParameterError(
      PrivacyParameterErrorCode.InvalidOption,
      'granularityBits',
      `granularityBits must be an integer in [${MIN_GRANULARITY_BITS}, ${MAX_GRANULARITY_BITS}]; got ${String(granularityBits)}`,
    );
  }
  let e = Math.floor(Math.log2(stddev));
  // Math.log2 may be off by one ulp next to powers of two: pin 2^e <= stddev < 2^(e+1) exactly.
  while (2 ** e > stddev) e--;
  while (2 ** (e + 1) <= stddev) e++;
  const granularity = 2 ** (e - granularityBits);
  if (!(granularity >= 2 ** -1022)) {
    throw new PrivacyParameterError(
      PrivacyParameterErrorCode.InvalidStddev,
      'stddev',
      `stddev ${stddev} is too small for a normal-number noise lattice`,
    );
  }
  // stddev / gamma is exact (power-of-two scaling) and lies in [2^granularityBits, 2^(granularityBits+1)). Rounding
  // s up only adds noise, so the accounted epsilon (computed for the requested stddev) stays an upper bound.
  const latticeSigma = Math.ceil(stddev / granularity / KARNEY_BLOCKS) * KARNEY_BLOCKS;
  return { granularity, granularityBits, latticeSigma, effectiveStddev: latticeSigma * granularity };
}

/**
 * `length` independent draws of Gaussian noise with standard deviation `stddev`, each an exact multiple of the lattice
 * spacing gamma (noiseLattice). Adding these to arbitrary floats re-opens the low-order-bits leak: to noise a vector,
 * use addGaussianNoiseInPlace or latticeNoise (lattice-noise.ts), which round the vector to the lattice first.
 */
export function gaussianNoise(length: number, stddev: number, options: NoiseOptions = {}): Float64Array {
  return drawNoise(length, stddev, options, (n) => new Float64Array(n));
}

/** Validates, then fills a new array with lattice noise (gamma is a power of two: float64 products are exact). */
function drawNoise(
  length: number,
  stddev: number,
  options: NoiseOptions,
  allocate: (length: number) => Float64Array,
): Float64Array {
  assertLength(length);
  const lattice = noiseLattice(stddev, options.granularityBits);
  const sampler = new KarneyDiscreteGaussianSampler(lattice.latticeSigma, options.rng ?? defaultRandomSource());
  const out = allocate(length);
  sampler.fill(out, lattice.granularity);
  return out;
}

/**
 * Adds Gaussian noise of standard deviation `stddev` to `values` in place: each value x becomes
 * gamma * (round(x / gamma) + Y) with Y ~ N_Z(0, s^2), s = noiseLattice(stddev).latticeSigma (Canonne, Kamath, Steinke
 * 2020; drawn by Karney 2016), then is stored at
 * the array's precision (post-processing). Throws NonFiniteValue on NaN/Infinity input.
 */
export function addGaussianNoiseInPlace(
  values: Float32Array | Float64Array,
  stddev: number,
  options: NoiseOptions = {},
): NoiseTrace {
  const lattice = noiseLattice(stddev, options.granularityBits);
  const gamma = lattice.granularity;
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]! / gamma)) {
      throw new PrivacyParameterError(
        PrivacyParameterErrorCode.NonFiniteValue,
        'values',
        `values[${i}] = ${values[i]} is not finite on the noise lattice (spacing ${gamma})`,
      );
    }
  }
  const sampler = new KarneyDiscreteGaussianSampler(lattice.latticeSigma, options.rng ?? defaultRandomSource());
  for (let i = 0; i < values.length; i++) {
    // x / gamma is exact (power-of-two scaling); the integer sum is rounded only as a function of itself.
    values[i] = (Math.round(values[i]! / gamma) + sampler.sample()) * gamma;
  }
  return {
    mechanism: 'discrete-gaussian-lattice',
    stddev,
    effectiveStddev: lattice.effectiveStddev,
    granularity: gamma,
    granularityBits: lattice.granularityBits,
    length: values.length,
    roundingSensitivity: gamma * Math.sqrt(values.length),
  };
}
