import { expect } from 'vitest';
import { AggregationErrorCode, AggregationException } from './aggregation.exception';
import type { UpdateBlockReader } from './update-blocks';

/** Seeded uniform [0, 1) (mulberry32): test data that is random-looking, reproducible and independent of Math.random. */
export function seededUniform(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Seeded standard normal samples (Box–Muller on seededUniform). */
export function seededNormal(seed: number): () => number {
  const uniform = seededUniform(seed);
  return () => {
    const u = 1 - uniform();
    const v = uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
}

/** A float32 vector of m independent N(0, sd²) values. */
export function gaussianVector(m: number, normal: () => number, sd = 1): Float32Array {
  return Float32Array.from({ length: m }, () => sd * normal());
}

/** `base` + N(0, sd²) noise per coordinate. */
export function around(base: Float32Array, normal: () => number, sd: number): Float32Array {
  return Float32Array.from(base, (x) => x + sd * normal());
}

export const f32 = (...xs: number[]): Float32Array => Float32Array.from(xs);

/** Builds 2-D/3-D point sets as updates. */
export const points = (...rows: number[][]): Float32Array[] => rows.map((r) => Float32Array.from(r));

/**
 * A reader over in-memory updates that checks how it is used (ranges inside [0, m), one block at a time) and counts
 * reads per update, so tests can assert the number of passes. Returns copies, so no caller can alias the inputs.
 */
export function countingReader(updates: readonly Float32Array[]): UpdateBlockReader & {
  readonly reads: number[];
  readonly maxRange: () => number;
} {
  const reads = updates.map(() => 0);
  let maxRange = 0;
  return {
    count: updates.length,
    length: updates[0]!.length,
    reads,
    maxRange: () => maxRange,
    readBlock: (update, start, end) => {
      expect(start).toBeGreaterThanOrEqual(0);
      expect(end).toBeLessThanOrEqual(updates[0]!.length);
      expect(end).toBeGreaterThan(start);
      reads[update]! += 1;
      maxRange = Math.max(maxRange, end - start);
      return Promise.resolve(updates[update]!.slice(start, end));
    },
  };
}

/** Runs `run` and returns the AggregationException's code, failing the test when nothing (or something else) is thrown. */
export function refusalCode(run: () => unknown): AggregationErrorCode {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(AggregationException);
  expect((caught as AggregationException).message.length).toBeGreaterThan(10);
  return (caught as AggregationException).code;
}

/** As refusalCode, for a promise. */
export async function asyncRefusalCode(run: () => Promise<unknown>): Promise<AggregationErrorCode> {
  let caught: unknown;
  try {
    await run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(AggregationException);
  return (caught as AggregationException).code;
}

/** Max |a − b| over two equal-length vectors. */
export function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i += 1) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

/** Bit-for-bit equality of two float32 vectors (fast on long vectors, where toEqual compares element by element). */
export function expectSameBits(actual: Float32Array, expected: Float32Array): void {
  expect(actual.length).toBe(expected.length);
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  const b = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  expect(a.equals(b)).toBe(true);
}
