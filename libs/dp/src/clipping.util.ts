// L2 clipping for DP-SGD (per-example gradients) and DP-FedAvg (whole updates): the sensitivity bound C that the
// accountant's noise multiplier is relative to. Abadi et al. 2016, "Deep Learning with Differential Privacy", section 3.1.

import { PrivacyParameterError, PrivacyParameterErrorCode } from './privacy-parameter.exception';

/**
 * L2 norm of a vector, accumulated in double precision whatever the array type. Scaled by the largest magnitude so
 * neither huge (overflow) nor tiny (underflow) components lose the result. NaN if any component is NaN, Infinity if any
 * is infinite.
 */
export function l2Norm(values: Float32Array | Float64Array | readonly number[]): number {
  let scale = 0;
  for (let i = 0; i < values.length; i++) {
    const a = Math.abs(values[i]!);
    if (Number.isNaN(a)) return NaN;
    if (a > scale) scale = a;
  }
  if (scale === 0) return 0;
  if (scale === Infinity) return Infinity;
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    const r = values[i]! / scale;
    sum += r * r;
  }
  return scale * Math.sqrt(sum);
}

/**
 * Scales `values` in place so that l2Norm(values) <= clipNorm, returning the factor applied (1 when already inside the
 * ball). Rounding back to the array's precision can nudge the norm up by a few ulps, so the factor is re-tightened
 * until the stored vector is inside the ball as measured by l2Norm. Throws NonFiniteValue on NaN or Infinity: a NaN
 * gradient would otherwise pass every norm comparison unclipped.
 */
export function clipToNormInPlace(values: Float32Array | Float64Array, clipNorm: number): number {
  if (typeof clipNorm !== 'number' || !Number.isFinite(clipNorm) || clipNorm <= 0) {
    throw new PrivacyParameterError(
      PrivacyParameterErrorCode.InvalidClipNorm,
      'clipNorm',
      `clipNorm must be a finite number > 0; got ${String(clipNorm)}`,
    );
  }
  let norm = l2Norm(values);
  if (!Number.isFinite(norm)) {
    throw new PrivacyParameterError(
      PrivacyParameterErrorCode.NonFiniteValue,
      'values',
      'values hold NaN or Infinity and cannot be clipped',
    );
  }
  let total = 1;
  // Each pass shrinks by at least the overshoot plus 2^-40 of slack; two passes suffice in practice.
  for (let pass = 0; norm > clipNorm; pass++) {
    const factor = pass === 0 ? clipNorm / norm : (clipNorm / norm) * (1 - 2 ** -40 * 2 ** pass);
    for (let i = 0; i < values.length; i++) values[i]! *= factor;
    total *= factor;
    norm = l2Norm(values);
  }
  return total;
}
