// Clipping and quantisation: a float update becomes integers modulo 2^k that masks can hide and the hub can sum
// exactly. Stochastic rounding keeps the quantised value unbiased (E[q] = x·s), so quantisation adds zero-mean error
// of less than one step per coordinate and input rather than a systematic bias.

import { SecAggRandom } from './random-source';
import { SecAggErrorCode, SecAggException } from './secagg.exception';

/** How a float vector maps to integers modulo 2^k. */
export interface QuantisationParameters {
  /** L2 clipping norm C, in the update's own units: inputs are scaled down to norm ≤ C before quantisation. */
  clipNorm: number;
  /** Quantisation scale s: one integer step is 1/s in the update's units. */
  scale: number;
  /** k: integers live modulo 2^k, 2 ≤ k ≤ 32 (vectors are Uint32Array). */
  modulusBits: number;
}

/** What quantise() applied to one input: the audit trace of the transformation. */
export interface QuantisationTrace {
  /** L2 norm of the input before clipping. */
  inputNorm: number;
  /** Factor the input was multiplied by (1 when its norm was already ≤ C). */
  clipFactor: number;
  clipNorm: number;
  scale: number;
  modulusBits: number;
  /** B = ⌈C·s⌉: no quantised coordinate exceeds B in absolute value. */
  coordinateBound: number;
}

const WORDS_PER_DRAW = 16_384; // 64 KiB of random words per refill: O(1) memory whatever the vector length.

/** Throws INVALID_PARAMETERS unless C and s are finite and > 0 and 2 ≤ k ≤ 32. */
export function assertQuantisationParameters(p: QuantisationParameters): void {
  if (!Number.isFinite(p.clipNorm) || p.clipNorm <= 0) {
    throw new SecAggException(SecAggErrorCode.InvalidParameters, `clipNorm must be finite and > 0, got ${p.clipNorm}.`);
  }
  if (!Number.isFinite(p.scale) || p.scale <= 0) {
    throw new SecAggException(SecAggErrorCode.InvalidParameters, `scale must be finite and > 0, got ${p.scale}.`);
  }
  if (!Number.isInteger(p.modulusBits) || p.modulusBits < 2 || p.modulusBits > 32) {
    throw new SecAggException(
      SecAggErrorCode.InvalidParameters,
      `modulusBits must be an integer in [2, 32], got ${p.modulusBits}.`,
    );
  }
}

/**
 * B = ⌈C·s⌉, the largest magnitude of one quantised coordinate. A single coordinate can carry the whole L2 norm
 * (|x_i| ≤ ‖x‖₂ ≤ C), so the per-coordinate bound is C·s, not C·s/√m.
 */
export function coordinateBound(clipNorm: number, scale: number): number {
  return Math.ceil(clipNorm * scale);
}

/**
 * Refuses (MODULUS_TOO_SMALL) parameters under which the sum of `participantCount` clipped, quantised inputs could
 * leave the centred range [−2^(k−1), 2^(k−1)) and so wrap modulo 2^k: requires n·B ≤ 2^(k−1) − 1 with B = ⌈C·s⌉.
 * The bound is worst case over every coordinate and every subset of survivors (a sum of fewer inputs is smaller).
 * Noise added on the integer lattice later (distributed DP) must be included by the caller in a larger B.
 */
export function assertNoWrap(p: QuantisationParameters & { participantCount: number }): void {
  assertQuantisationParameters(p);
  if (!Number.isSafeInteger(p.participantCount) || p.participantCount < 1) {
    throw new SecAggException(
      SecAggErrorCode.InvalidParameters,
      `participantCount must be a positive integer, got ${p.participantCount}.`,
    );
  }
  const bound = coordinateBound(p.clipNorm, p.scale);
  const limit = 2 ** (p.modulusBits - 1) - 1;
  if (p.participantCount * bound > limit) {
    throw new SecAggException(
      SecAggErrorCode.ModulusTooSmall,
      `The sum of ${p.participantCount} inputs clipped to ${p.clipNorm} at scale ${p.scale} can reach ` +
        `${p.participantCount} × ${bound} = ${p.participantCount * bound} in one coordinate, more than ` +
        `2^${p.modulusBits - 1} − 1 = ${limit}: it would wrap modulo 2^${p.modulusBits}. Lower the scale to at most ` +
        `${maxSafeScale(p)} or raise modulusBits.`,
    );
  }
}

/** The largest scale s with n·⌈C·s⌉ ≤ 2^(k−1) − 1 (the finest quantisation that cannot wrap), or 0 if none. */
export function maxSafeScale(p: { participantCount: number; clipNorm: number; modulusBits: number }): number {
  const maxBound = Math.floor((2 ** (p.modulusBits - 1) - 1) / p.participantCount);
  if (maxBound < 1) return 0;
  let scale = maxBound / p.clipNorm;
  // Rounding of the division may put C·s an ulp above maxBound, where ⌈·⌉ jumps by one: step down until it holds.
  while (coordinateBound(p.clipNorm, scale) > maxBound) scale *= 1 - 2 ** -50;
  return scale;
}

/**
 * Worst-case absolute error per coordinate of a dequantised sum of `participantCount` inputs against the sum of the
 * clipped float inputs: each stochastic rounding moves a value by less than one step 1/s.
 */
export function sumQuantisationErrorBound(participantCount: number, scale: number): number {
  return participantCount / scale;
}

/** L2 norm in float64; throws VECTOR_INVALID on NaN or ±Infinity. */
function l2Norm(input: Float32Array | Float64Array): number {
  let sum = 0;
  for (let i = 0; i < input.length; i++) {
    const v = input[i]!;
    if (!Number.isFinite(v)) {
      throw new SecAggException(SecAggErrorCode.VectorInvalid, `Input value ${i} is not finite (${v}).`);
    }
    sum += v * v;
  }
  return Math.sqrt(sum);
}

/**
 * Clips `input` to L2 norm C, multiplies by s and rounds stochastically (up with probability equal to the fractional
 * part), then stores each integer modulo 2^k (two's complement, so −1 is 2^k − 1). One pass, O(1) extra memory.
 * Stochastic (randomised) rounding as in the distributed-DP pipelines of Kairouz, Liu, Steinke 2021 (the distributed
 * discrete Gaussian) and Agarwal, Kairouz, Liu 2021 (the Skellam mechanism).
 */
export function quantise(
  input: Float32Array | Float64Array,
  p: QuantisationParameters,
  random: SecAggRandom,
  out: Uint32Array = new Uint32Array(input.length),
): { vector: Uint32Array; trace: QuantisationTrace } {
  assertQuantisationParameters(p);
  if (out.length !== input.length) {
    throw new SecAggException(
      SecAggErrorCode.VectorInvalid,
      `Output length ${out.length} differs from input length ${input.length}.`,
    );
  }
  const inputNorm = l2Norm(input);
  const clipFactor = inputNorm > p.clipNorm ? p.clipNorm / inputNorm : 1;
  const multiplier = clipFactor * p.scale;
  const bound = coordinateBound(p.clipNorm, p.scale);
  const mask = modulusMask(p.modulusBits);
  const words = new Uint32Array(Math.min(WORDS_PER_DRAW, input.length));
  const wordBytes = new Uint8Array(words.buffer);
  for (let start = 0; start < input.length; start += words.length) {
    const end = Math.min(start + words.length, input.length);
    random.fill(wordBytes);
    for (let i = start; i < end; i++) {
      const y = input[i]! * multiplier;
      const floor = Math.floor(y);
      // words[i - start] / 2^32 is uniform on [0, 1): round up with probability y − ⌊y⌋ (to within 2^-32).
      let q = words[i - start]! * 2 ** -32 < y - floor ? floor + 1 : floor;
      // |y| ≤ C·s up to float rounding of the clip factor; the clamp keeps the wrap-around proof exact.
      if (q > bound) q = bound;
      else if (q < -bound) q = -bound;
      out[i] = q & mask;
    }
  }
  const trace: QuantisationTrace = {
    inputNorm,
    clipFactor,
    clipNorm: p.clipNorm,
    scale: p.scale,
    modulusBits: p.modulusBits,
    coordinateBound: bound,
  };
  return { vector: out, trace };
}

/**
 * Maps a sum modulo 2^k back to floats: each value is read as the centred representative in [−2^(k−1), 2^(k−1))
 * (exact when assertNoWrap held) and divided by s. The result is the sum, not the mean.
 */
export function dequantiseSum(
  sum: Uint32Array,
  p: Pick<QuantisationParameters, 'scale' | 'modulusBits'>,
  out: Float64Array = new Float64Array(sum.length),
): Float64Array {
  if (out.length !== sum.length) {
    throw new SecAggException(
      SecAggErrorCode.VectorInvalid,
      `Output length ${out.length} differs from sum length ${sum.length}.`,
    );
  }
  const modulus = 2 ** p.modulusBits;
  const half = modulus / 2;
  const step = 1 / p.scale;
  for (let i = 0; i < sum.length; i++) {
    const v = sum[i]!;
    out[i] = (v >= half ? v - modulus : v) * step;
  }
  return out;
}

/**
 * The bit mask 2^k − 1 as an int32 (−1 for k = 32). `(x & mask)` reduces any integer |x| < 2^53 modulo 2^k once
 * stored in a Uint32Array: for k = 32 the int32 result is reinterpreted as unsigned by the store.
 */
export function modulusMask(modulusBits: number): number {
  return modulusBits === 32 ? -1 : 2 ** modulusBits - 1;
}

/** Throws VECTOR_INVALID unless `vector` has `length` values, all below 2^k. */
export function assertModularVector(vector: Uint32Array, length: number, modulusBits: number, what: string): void {
  if (vector.length !== length) {
    throw new SecAggException(
      SecAggErrorCode.VectorInvalid,
      `${what} has ${vector.length} values, expected ${length}.`,
    );
  }
  if (modulusBits === 32) return;
  const modulus = 2 ** modulusBits;
  for (let i = 0; i < vector.length; i++) {
    if (vector[i]! >= modulus) {
      throw new SecAggException(
        SecAggErrorCode.VectorInvalid,
        `${what} value ${i} is ${vector[i]}, not below 2^${modulusBits}.`,
      );
    }
  }
}
