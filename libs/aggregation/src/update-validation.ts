import { AggregationErrorCode, AggregationException } from './aggregation.exception';

/**
 * Sum of squares of `values`, accumulated in float64. Returns NaN or Infinity exactly when some value is not finite:
 * float32 values are at most 3.4e38, so a square is at most 1.2e77 and even 2^32 of them stay far below the float64
 * limit (1.8e308) — overflow cannot fake a non-finite input. One read-only pass: this doubles as the finiteness check.
 */
export function squaredNorm(values: Float32Array | Float64Array): number {
  // Four independent partial sums over an eight-wide body: a single running sum is a chain of dependent float adds
  // (latency-bound). Measured per parameter at m = 1M here: one sum 0.9–2.6 ns, four sums 0.55 ns, this 0.44 ns.
  // The n % 8 leftovers are handled FIRST: a remainder loop placed after the hot loop has no type feedback when V8
  // compiles the hot loop on-stack, and that layout fell into repeated deoptimisation in about half of the
  // processes we measured (0.5 vs 5–13 ns per parameter).
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  const n = values.length;
  const head = n % 8;
  let i = 0;
  for (; i < head; i += 1) {
    const x = values[i]!;
    a += x * x;
  }
  for (; i < n; i += 8) {
    const x0 = values[i]!;
    const x1 = values[i + 1]!;
    const x2 = values[i + 2]!;
    const x3 = values[i + 3]!;
    const x4 = values[i + 4]!;
    const x5 = values[i + 5]!;
    const x6 = values[i + 6]!;
    const x7 = values[i + 7]!;
    a += x0 * x0 + x4 * x4;
    b += x1 * x1 + x5 * x5;
    c += x2 * x2 + x6 * x6;
    d += x3 * x3 + x7 * x7;
  }
  return a + b + (c + d);
}

/** Euclidean (L2) norm, float64 accumulation. NaN/Infinity if any value is not finite. */
export function l2Norm(values: Float32Array | Float64Array): number {
  return Math.sqrt(squaredNorm(values));
}

/** Index of the first non-finite value, or -1. Only used to write a precise refusal message. */
export function firstNonFiniteIndex(values: Float32Array | Float64Array): number {
  for (let i = 0; i < values.length; i += 1) {
    if (!Number.isFinite(values[i])) return i;
  }
  return -1;
}

/** Throws LengthMismatch unless `values.length === expected`. */
export function assertLength(values: ArrayLike<number>, expected: number, what: string): void {
  if (values.length !== expected) {
    throw new AggregationException(
      AggregationErrorCode.LengthMismatch,
      `${what} has ${values.length} parameters, expected ${expected}`,
    );
  }
}

/**
 * Checks that every value is finite and returns the float64 squared norm (computed in the same pass).
 * Throws NonFiniteValue naming the first bad index.
 */
export function assertFiniteSquaredNorm(values: Float32Array | Float64Array, what: string): number {
  const s = squaredNorm(values);
  if (!Number.isFinite(s)) {
    const i = firstNonFiniteIndex(values);
    throw new AggregationException(
      AggregationErrorCode.NonFiniteValue,
      `${what} holds a non-finite value (${String(values[i])}) at index ${i}`,
    );
  }
  return s;
}

/** Throws InvalidWeight unless `weight` is a finite number > 0 (a weight is a number of examples). */
export function assertWeight(weight: number): void {
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0) {
    throw new AggregationException(
      AggregationErrorCode.InvalidWeight,
      `weight must be a finite number > 0 (examples), got ${String(weight)}`,
    );
  }
}

export interface UpdateLimits {
  /** Expected number of parameters (the model's flat length). */
  readonly length: number;
  /** Optional L2 bound; an update above it is refused. Same units as the parameters. */
  readonly maxNorm?: number;
}

/**
 * The hub's admission check for an uploaded update (a delta: local − global weights): exact length, every value
 * finite, and optionally L2 norm ≤ `maxNorm`. Returns the L2 norm (float64 accumulation) so the caller can record it.
 * Throws AggregationException (LengthMismatch, NonFiniteValue, NormExceeded, InvalidParameter).
 */
export function validateUpdate(update: Float32Array, limits: UpdateLimits): number {
  if (!Number.isInteger(limits.length) || limits.length < 0) {
    throw new AggregationException(AggregationErrorCode.InvalidParameter, `length must be an integer ≥ 0`);
  }
  if (limits.maxNorm !== undefined && !(limits.maxNorm >= 0 && Number.isFinite(limits.maxNorm))) {
    throw new AggregationException(AggregationErrorCode.InvalidParameter, `maxNorm must be a finite number ≥ 0`);
  }
  assertLength(update, limits.length, 'update');
  const norm = Math.sqrt(assertFiniteSquaredNorm(update, 'update'));
  if (limits.maxNorm !== undefined && norm > limits.maxNorm) {
    throw new AggregationException(
      AggregationErrorCode.NormExceeded,
      `update L2 norm ${norm} exceeds the limit ${limits.maxNorm}`,
    );
  }
  return norm;
}
