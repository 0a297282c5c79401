// Gaussian noise for DP-SGD and DP-FedAvg without the floating-point pitfall (Mironov 2012, "On significance of the
// least significant bits for differential privacy"): noise is gamma * N_Z(0, (stddev / gamma)^2), an exact discrete
// Gaussian (Canonne, Kamath, Steinke 2020) on the lattice gamma * Z, with gamma a power of two. Values receiving noise
// are first rounded to the same lattice, so every output is a lattice point whose distribution depends on the input
// only through the rounded input: no low-order bits of the input survive. See docs/adr/0003-privacy-accountant.md.

import { DiscreteGaussianSampler, type ExactRational } from './discrete-gaussian';
import { PrivacyParameterError, PrivacyParameterErrorCode } from './privacy-parameter.exception';
import { defaultRandomSource, type RandomSource } from './random-source';

/**
 * Default lattice fineness: gamma = 2^(floor(log2 stddev) - 24), so stddev / gamma lies in [2^24, 2^25). At that scale the
 * discrete and continuous Gaussians are indistinguishable for accounting purposes, and rounding a d-dimensional vector
 * to the lattice moves it by at most gamma * sqrt(d) / 2 <= stddev * sqrt(d) * 2^-25 in L2.
 */
export const DEFAULT_GRANULARITY_BITS = 24;
const MIN_GRANULARITY_BITS = 8;
const MAX_GRANULARITY_BITS = 36;

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
  /** (stddev / gamma)^2, exactly, as a rational of BigInts. */
  readonly latticeSigmaSquared: ExactRational;
}

/** What addGaussianNoiseInPlace did, for the update's audit trace. */
export interface NoiseTrace {
  readonly mechanism: 'discrete-gaussian-lattice';
  /** Requested noise standard deviation (absolute units: noiseMultiplier * clipNorm). */
  readonly stddev: number;
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

/** The exact value of a positive finite double as mantissa * 2^exponent with an integer mantissa. */
function exactDouble(x: number): { mantissa: bigint; exponent: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const biased = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  return biased === 0
    ? { mantissa: fraction, exponent: -1074 }
    : { mantissa: fraction | (1n << 52n), exponent: biased - 1075 };
}

/**
 * The noise lattice for `stddev`: gamma = 2^(floor(log2 stddev) - granularityBits) and the exact discrete-Gaussian
 * parameter (stddev / gamma)^2 (Canonne, Kamath, Steinke 2020, used at granularity gamma).
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
  // stddev / gamma is exact (power-of-two scaling); square it exactly.
  let { mantissa, exponent } = exactDouble(stddev / granularity);
  // Reduce the fraction (strip common factors of two) so the sampler's BigInts stay small.
  while (exponent < 0 && (mantissa & 1n) === 0n) {
    mantissa >>= 1n;
    exponent++;
  }
  const squared = mantissa * mantissa;
  const latticeSigmaSquared: ExactRational =
    exponent >= 0
      ? { numerator: squared << BigInt(2 * exponent), denominator: 1n }
      : { numerator: squared, denominator: 1n << BigInt(-2 * exponent) };
  return { granularity, granularityBits, latticeSigmaSquared };
}

/**
 * `length` independent draws of Gaussian noise with standard deviation `stddev`, each an exact multiple of the lattice
 * spacing gamma (noiseLattice). Adding these to arbitrary floats re-opens the low-order-bits leak: to noise a vector,
 * use addGaussianNoiseInPlace, which rounds the vector to the lattice first.
 */
export function gaussianNoise(length: number, stddev: number, options: NoiseOptions = {}): Float64Array {
  assertLength(length);
  const lattice = noiseLattice(stddev, options.granularityBits);
  const sampler = new DiscreteGaussianSampler(lattice.latticeSigmaSquared, options.rng ?? defaultRandomSource());
  const out = new Float64Array(length);
  for (let i = 0; i < length; i++) out[i] = sampler.sample() * lattice.granularity;
  return out;
}

/**
 * Adds Gaussian noise of standard deviation `stddev` to `values` in place: each value x becomes
 * gamma * (round(x / gamma) + Y) with Y ~ N_Z(0, (stddev / gamma)^2) (Canonne, Kamath, Steinke 2020), then is stored at
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
    if (!Number.isFinite(values[i] / gamma)) {
      throw new PrivacyParameterError(
        PrivacyParameterErrorCode.NonFiniteValue,
        'values',
        `values[${i}] = ${values[i]} is not finite on the noise lattice (spacing ${gamma})`,
      );
    }
  }
  const sampler = new DiscreteGaussianSampler(lattice.latticeSigmaSquared, options.rng ?? defaultRandomSource());
  for (let i = 0; i < values.length; i++) {
    // x / gamma is exact (power-of-two scaling); the integer sum is rounded only as a function of itself.
    values[i] = (Math.round(values[i] / gamma) + sampler.sample()) * gamma;
  }
  return {
    mechanism: 'discrete-gaussian-lattice',
    stddev,
    granularity: gamma,
    granularityBits: lattice.granularityBits,
    length: values.length,
    roundingSensitivity: gamma * Math.sqrt(values.length),
  };
}
