// Distributed differential privacy under secure aggregation: every silo adds its own share of the noise to its
// quantised update on the integer lattice, so the sum the hub unmasks carries the whole noise while no party ever
// sees an un-noised input (docs/adr/0013-distributed-discrete-gaussian.md).
//
// The mechanism is the distributed discrete Gaussian of Kairouz, Liu and Steinke, "The Distributed Discrete Gaussian
// Mechanism for Federated Learning with Secure Aggregation", ICML 2021 (KLS21). Each of the silos adds independent
// N_Z(0, σ²) noise to every coordinate of its integer vector; the sum of n such shares is not itself a discrete
// Gaussian, but KLS21 Theorem 1 bounds it: for integer vectors Δ with ‖Δ‖₂ ≤ Δ₂ and every α > 1,
//
//   D_α(Z ‖ Z + Δ) ≤ α·ε²/2,   ε = sqrt(Δ₂² / (n·σ²) + τ·d/2),   τ = 10·Σ_{k=1}^{n−1} exp(−2π²σ²·k/(k+1)).
//
// (The theorem states ε as the minimum of this and a second expression; using the first alone is an upper bound.)
// That is the Rényi curve of a Gaussian mechanism with multiplier 1/ε, so a share σ with ε ≤ 1/z makes the sum at
// least as private, at every order, as the Gaussian mechanism of multiplier z that the study's RDP accountant
// charges: the accountant stays unchanged and charges correctly.
//
// Sensitivity in lattice units. A silo clips its update to L2 norm C, multiplies by the scale s and rounds every
// coordinate stochastically to a neighbouring integer. Each coordinate moves by less than one step, so the rounded
// vector has norm at most C·s + √d: the deterministic bound KLS21 §4 (their Δ₂ before conditional rounding, the
// second term of the minimum in their eq. for Δ₂²) state for randomized rounding. Neighbouring studies differ in one
// silo's update (replaced by zero: the silo still adds its noise share), so Δ₂ = C·s + √d.
//
// Worst case of the survivors. Under secure aggregation a round is summed only when at least t silos survive (the
// Shamir threshold), so the sum holds at least t noise shares; each silo's σ is sized for n = t. More survivors add
// more noise, which only helps (post-processing of a more private release, by the data-processing inequality once
// the extra shares are regarded as independent noise added to the t-share mechanism).

import { KARNEY_BLOCKS, MAX_KARNEY_SIGMA } from './karney-discrete-gaussian';
import { PrivacyParameterError, PrivacyParameterErrorCode } from './privacy-parameter.exception';

/** What a silo's share of the distributed noise is sized from. */
export interface DistributedNoiseParameters {
  /** C: the L2 norm each silo clips its update to, in the update's units. */
  readonly clipNorm: number;
  /** s: lattice steps per unit of the update (one integer step = 1/s). */
  readonly scale: number;
  /** d: coordinates of the update; every one is rounded, so √d enters the sensitivity. */
  readonly dimension: number;
  /** t: the fewest noise shares a released sum is guaranteed to hold (the secure-aggregation threshold). */
  readonly shares: number;
  /** z: the noise multiplier the accountant charges (Gaussian mechanism of stddev z·C on the float sum). */
  readonly noiseMultiplier: number;
}

/** One silo's share of the noise and the guarantee of t shares; also the round's audit trace (JSON-safe numbers). */
export interface DistributedNoisePlan {
  readonly mechanism: 'distributed-discrete-gaussian';
  readonly clipNorm: number;
  readonly scale: number;
  readonly dimension: number;
  readonly shares: number;
  readonly noiseMultiplier: number;
  /** Δ₂ = C·s + √d: the L2 sensitivity of one silo's rounded update, in lattice units. */
  readonly sensitivity: number;
  /** σ: each silo's discrete-Gaussian parameter, an integer multiple of 16, in lattice units. */
  readonly siloSigma: number;
  /** τ of KLS21 Theorem 1 for t shares of σ (0 in float64 once σ ≥ 2). */
  readonly tau: number;
  /** ε of KLS21 Theorem 1 (the sum of t shares is ε²/2-concentrated DP); ≤ 1/z by construction. */
  readonly epsilon: number;
  /** √t·σ/s: the noise stddev of t shares in the update's units (≥ z·C). */
  readonly effectiveStddev: number;
}

function invalid(code: PrivacyParameterErrorCode, parameter: string, message: string): never {
  throw new PrivacyParameterError(code, parameter, message);
}

function positiveFinite(value: number, parameter: string, code: PrivacyParameterErrorCode): void {
  if (!(typeof value === 'number' && Number.isFinite(value) && value > 0)) {
    invalid(code, parameter, `${parameter} must be a finite number > 0`);
  }
}

function positiveInteger(value: number, parameter: string): void {
  if (!(Number.isSafeInteger(value) && value >= 1)) {
    invalid(PrivacyParameterErrorCode.InvalidOption, parameter, `${parameter} must be a positive integer`);
  }
}

/** τ = 10·Σ_{k=1}^{n−1} exp(−2π²σ²·k/(k+1)) (KLS21 Theorem 1): how far n shares are from one discrete Gaussian. */
export function distributedDiscreteGaussianTau(sigma: number, shares: number): number {
  positiveFinite(sigma, 'sigma', PrivacyParameterErrorCode.InvalidStddev);
  positiveInteger(shares, 'shares');
  let sum = 0;
  for (let k = 1; k < shares; k++) sum += Math.exp((-2 * Math.PI * Math.PI * sigma * sigma * k) / (k + 1));
  return 10 * sum;
}

/**
 * ε of KLS21 Theorem 1 (first term of its minimum): the sum of `shares` independent N_Z(0, σ²)^d vectors is
 * ε²/2-concentrated DP for integer neighbours at L2 distance ≤ Δ₂, i.e. its Rényi divergence of order α is at most
 * α·ε²/2. Requires σ ≥ 1/2 (the theorem's hypothesis).
 */
export function distributedDiscreteGaussianEpsilon(input: {
  sensitivity: number;
  sigma: number;
  shares: number;
  dimension: number;
}): number {
  const { sensitivity, sigma, shares, dimension } = input;
  positiveFinite(sensitivity, 'sensitivity', PrivacyParameterErrorCode.InvalidOption);
  positiveFinite(sigma, 'sigma', PrivacyParameterErrorCode.InvalidStddev);
  positiveInteger(dimension, 'dimension');
  if (sigma < 0.5) {
    invalid(PrivacyParameterErrorCode.InvalidStddev, 'sigma', 'KLS21 Theorem 1 needs σ ≥ 1/2');
  }
  const tau = distributedDiscreteGaussianTau(sigma, shares);
  return Math.sqrt((sensitivity * sensitivity) / (shares * sigma * sigma) + (tau * dimension) / 2);
}

/**
 * Each silo's share σ of the distributed discrete Gaussian (module comment): the smallest multiple of 16 (the exact
 * sampler's fast case) with KLS21's ε ≤ 1/z for t shares and Δ₂ = C·s + √d, so the RDP accountant's Gaussian
 * charge of multiplier z bounds the released sum's privacy loss at every order. Throws PrivacyParameterError on bad
 * parameters, or when σ would exceed the exact sampler's 2^31 (lower the scale).
 */
export function distributedNoisePlan(parameters: DistributedNoiseParameters): DistributedNoisePlan {
  const { clipNorm, scale, dimension, shares, noiseMultiplier } = parameters;
  positiveFinite(clipNorm, 'clipNorm', PrivacyParameterErrorCode.InvalidClipNorm);
  positiveFinite(scale, 'scale', PrivacyParameterErrorCode.InvalidOption);
  positiveFinite(noiseMultiplier, 'noiseMultiplier', PrivacyParameterErrorCode.InvalidNoiseMultiplier);
  positiveInteger(dimension, 'dimension');
  positiveInteger(shares, 'shares');
  const sensitivity = clipNorm * scale + Math.sqrt(dimension);
  const target = 1 / noiseMultiplier;
  // σ ≥ z·Δ₂/√t makes the first term ≤ 1/z²; the factor 1 + 2^-40 absorbs float64 rounding of the product and
  // leaves room for τ·d/2, which is 0 in float64 at σ ≥ 16. The loop below checks the theorem's ε itself.
  const start = (noiseMultiplier * sensitivity * (1 + 2 ** -40)) / Math.sqrt(shares);
  let siloSigma = Math.max(KARNEY_BLOCKS, Math.ceil(start / KARNEY_BLOCKS) * KARNEY_BLOCKS);
  let epsilon = distributedDiscreteGaussianEpsilon({ sensitivity, sigma: siloSigma, shares, dimension });
  while (!(epsilon <= target) && siloSigma <= MAX_KARNEY_SIGMA) {
    siloSigma += KARNEY_BLOCKS;
    epsilon = distributedDiscreteGaussianEpsilon({ sensitivity, sigma: siloSigma, shares, dimension });
  }
  if (!(siloSigma <= MAX_KARNEY_SIGMA)) {
    invalid(
      PrivacyParameterErrorCode.InvalidOption,
      'scale',
      `a silo's noise share σ = ${siloSigma} lattice units exceeds the exact sampler's ${MAX_KARNEY_SIGMA}: lower the scale`,
    );
  }
  return {
    mechanism: 'distributed-discrete-gaussian',
    clipNorm,
    scale,
    dimension,
    shares,
    noiseMultiplier,
    sensitivity,
    siloSigma,
    tau: distributedDiscreteGaussianTau(siloSigma, shares),
    epsilon,
    effectiveStddev: (Math.sqrt(shares) * siloSigma) / scale,
  };
}

/** Probability, over all coordinates together, that the summed noise of a round leaves its margin: 2^-40. */
export const DISTRIBUTED_NOISE_TAIL = 2 ** -40;

/**
 * M such that the noise of n shares exceeds M·√n·σ in some coordinate of d with probability ≤ 2^-40. N_Z(0, σ²) is
 * σ-subgaussian (Canonne, Kamath, Steinke 2020, §2: its moment generating function is at most the continuous
 * Gaussian's), so a sum of n shares is √n·σ-subgaussian and
 * P(|S| ≥ M√nσ) ≤ 2·exp(−M²/2) per coordinate; a union bound over d gives M = sqrt(2·ln(2d/2^-40)).
 */
export function distributedNoiseTailFactor(dimension: number): number {
  positiveInteger(dimension, 'dimension');
  return Math.sqrt(2 * Math.log((2 * dimension) / DISTRIBUTED_NOISE_TAIL));
}

/**
 * The largest scale s at which the sum of n clipped, quantised updates plus n noise shares stays within the centred
 * range of 2^k except with probability 2^-40: n·⌈C·s⌉ + M·√n·σ(s) ≤ 2^(k−1) − 1, σ(s) from distributedNoisePlan with
 * the round's t. A wrap would corrupt the model, never the privacy (the modular sum is post-processing of the noisy
 * sum). Returns 0 when no scale fits (raise the modulus bits).
 */
export function distributedNoiseMaxScale(input: {
  participantCount: number;
  clipNorm: number;
  modulusBits: number;
  dimension: number;
  shares: number;
  noiseMultiplier: number;
}): number {
  const { participantCount: n, clipNorm, modulusBits, dimension, shares, noiseMultiplier } = input;
  positiveInteger(n, 'participantCount');
  const limit = 2 ** (modulusBits - 1) - 1;
  const margin = distributedNoiseTailFactor(dimension) * Math.sqrt(n);
  const perUnit = (noiseMultiplier * margin) / Math.sqrt(shares);
  // Linear in s once σ's rounding up to 16 (≤ 16·margin) is set aside: n·C·s + perUnit·(C·s + √d) ≤ limit.
  const room = limit - n - perUnit * Math.sqrt(dimension) - (KARNEY_BLOCKS + 1) * margin;
  if (!(room > 0)) return 0;
  let scale = room / (clipNorm * (n + perUnit));
  const fits = (s: number): boolean => {
    try {
      const plan = distributedNoisePlan({ clipNorm, scale: s, dimension, shares, noiseMultiplier });
      return n * Math.ceil(clipNorm * s) + margin * plan.siloSigma <= limit;
    } catch (err) {
      if (err instanceof PrivacyParameterError) return false;
      throw err;
    }
  };
  for (let i = 0; i < 64 && !fits(scale); i++) scale *= 1 - 2 ** -20;
  return fits(scale) ? scale : 0;
}
