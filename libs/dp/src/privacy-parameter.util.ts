// Validation of the accountant's parameters, shared by the RDP and PLD accountants: each check throws a
// PrivacyParameterError naming the offending parameter, so an API or CLI caller learns which input to fix.

import { PrivacyParameterError, PrivacyParameterErrorCode } from './privacy-parameter.exception';

export function assertNoiseMultiplier(noiseMultiplier: number, parameter = 'noiseMultiplier'): void {
  if (typeof noiseMultiplier !== 'number' || !Number.isFinite(noiseMultiplier) || noiseMultiplier <= 0) {
    throw new PrivacyParameterError(
      PrivacyParameterErrorCode.InvalidNoiseMultiplier,
      parameter,
      `${parameter} must be a finite number > 0 (noise stddev relative to the clipping norm); got ${String(noiseMultiplier)}`,
    );
  }
}

export function assertSamplingRate(samplingRate: number, parameter = 'samplingRate'): void {
  if (typeof samplingRate !== 'number' || !Number.isFinite(samplingRate) || samplingRate < 0 || samplingRate > 1) {
    throw new PrivacyParameterError(
      PrivacyParameterErrorCode.InvalidSamplingRate,
      parameter,
      `${parameter} must be a number in [0, 1] (Poisson sampling probability); got ${String(samplingRate)}`,
    );
  }
}

export function assertSteps(steps: number, parameter = 'steps'): void {
  if (typeof steps !== 'number' || !Number.isSafeInteger(steps) || steps < 1) {
    throw new PrivacyParameterError(
      PrivacyParameterErrorCode.InvalidSteps,
      parameter,
      `${parameter} must be a positive integer; got ${String(steps)}`,
    );
  }
}

export function assertDelta(delta: number, parameter = 'delta'): void {
  if (typeof delta !== 'number' || !Number.isFinite(delta) || delta <= 0 || delta >= 1) {
    throw new PrivacyParameterError(
      PrivacyParameterErrorCode.InvalidDelta,
      parameter,
      `${parameter} must be a number in the open interval (0, 1); got ${String(delta)}`,
    );
  }
}

export function assertEpsilon(epsilon: number, parameter = 'epsilon'): void {
  if (typeof epsilon !== 'number' || !Number.isFinite(epsilon) || epsilon <= 0) {
    throw new PrivacyParameterError(
      PrivacyParameterErrorCode.InvalidEpsilon,
      parameter,
      `${parameter} must be a finite number > 0; got ${String(epsilon)}`,
    );
  }
}

/**
 * Array.isArray for a parameter typed as a readonly array: the built-in narrows `readonly T[]` to `any[]`, so the
 * checked value would lose its element type; this keeps it (callers from JavaScript may still pass anything).
 */
export function isList<T>(value: readonly T[]): value is readonly T[] {
  return Array.isArray(value);
}
