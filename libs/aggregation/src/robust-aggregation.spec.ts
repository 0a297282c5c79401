import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AggregationErrorCode } from './aggregation.exception';
import { coordinateMedian, coordinateMedianBlockwise, trimmedMean, trimmedMeanBlockwise } from './robust-aggregation';
import {
  asyncRefusalCode,
  countingReader,
  expectSameBits,
  f32,
  gaussianVector,
  refusalCode,
  seededNormal,
} from './robust.test-util';
import { inMemoryBlockReader } from './update-blocks';

/** The textbook definitions, one coordinate at a time with Array.prototype.sort (the previous implementation). */
function referenceColumns(updates: readonly Float32Array[], reduce: (sorted: number[]) => number): Float32Array {
  return Float32Array.from({ length: updates[0]!.length }, (_, i) =>
    reduce(updates.map((u) => u[i]!).sort((a, b) => a - b)),
  );
}
const referenceMedian = (updates: readonly Float32Array[]): Float32Array =>
  referenceColumns(updates, (c) =>
    c.length % 2 === 1 ? c[c.length >> 1]! : (c[(c.length >> 1) - 1]! + c[c.length >> 1]!) / 2,
  );
const referenceTrimmedMean = (updates: readonly Float32Array[], beta: number): Float32Array => {
  const trim = Math.floor(beta * updates.length);
  return referenceColumns(updates, (c) => {
    let s = 0;
    for (let k = trim; k < c.length - trim; k += 1) s += c[k]!;
    return s / (c.length - 2 * trim);
  });
};

const batchArb = fc
  .record({ n: fc.integer({ min: 1, max: 40 }), m: fc.integer({ min: 1, max: 300 }), seed: fc.integer() })
  .map(({ n, m, seed }) => {
    const normal = seededNormal(seed);
    return Array.from({ length: n }, () => gaussianVector(m, normal));
  });

describe('robust aggregators (Yin et al. 2018)', () => {
  it('coordinate-wise median by hand, odd and even counts', () => {
    // column 0: {1, 9, 3} → 3; column 1: {-5, 0, 100} → 0
    expect(Array.from(coordinateMedian([f32(1, -5), f32(9, 0), f32(3, 100)]))).toEqual([3, 0]);
    // column 0: {1, 9, 3, 5} → (3 + 5)/2 = 4
    expect(Array.from(coordinateMedian([f32(1), f32(9), f32(3), f32(5)]))).toEqual([4]);
  });

  it('trimmed mean drops ⌊βn⌋ from each end by hand', () => {
    // n = 5, β = 0.2 → drop 1 each side: {-1000, 1, 2, 3, 1000} → (1 + 2 + 3)/3 = 2
    const updates = [f32(1000), f32(2), f32(-1000), f32(3), f32(1)];
    expect(Array.from(trimmedMean(updates, 0.2))).toEqual([2]);
    // β = 0 is the plain mean: (1000 + 2 − 1000 + 3 + 1)/5 = 1.2
    expect(trimmedMean(updates, 0)[0]).toBeCloseTo(1.2, 6);
  });

  it('equals the per-coordinate textbook definitions bit for bit (property, n up to 40)', () => {
    fc.assert(
      fc.property(batchArb, fc.double({ min: 0, max: 0.49, noNaN: true }), (updates, beta) => {
        expect(coordinateMedian(updates)).toEqual(referenceMedian(updates));
        expect(trimmedMean(updates, beta)).toEqual(referenceTrimmedMean(updates, beta));
      }),
      { numRuns: 60 },
    );
  });

  it('ignores a minority of arbitrarily large outliers (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -100, max: 100 }), { minLength: 5, maxLength: 5 }), (honest) => {
        const updates = [...honest.map((x) => f32(x)), f32(1e30), f32(-1e30)];
        const med = coordinateMedian(updates)[0];
        expect(med).toBeGreaterThanOrEqual(Math.min(...honest));
        expect(med).toBeLessThanOrEqual(Math.max(...honest));
        const tm = trimmedMean(updates, 2 / 7)[0];
        expect(tm).toBeGreaterThanOrEqual(Math.min(...honest));
        expect(tm).toBeLessThanOrEqual(Math.max(...honest));
      }),
      { numRuns: 100 },
    );
  });

  it('refuses empty, ragged or non-finite batches and bad fractions', () => {
    expect(refusalCode(() => coordinateMedian([]))).toBe(AggregationErrorCode.EmptyAggregate);
    expect(refusalCode(() => coordinateMedian([f32(1, 2), f32(1)]))).toBe(AggregationErrorCode.LengthMismatch);
    expect(refusalCode(() => trimmedMean([f32(Number.NaN)], 0))).toBe(AggregationErrorCode.NonFiniteValue);
    expect(refusalCode(() => trimmedMean([f32(1)], 0.5))).toBe(AggregationErrorCode.InvalidParameter);
    expect(refusalCode(() => trimmedMean([f32(1)], -0.1))).toBe(AggregationErrorCode.InvalidParameter);
  });
});

describe('blockwise coordinate statistics', () => {
  it('equal the in-memory results bit for bit, whatever the block size (property)', async () => {
    await fc.assert(
      fc.asyncProperty(batchArb, fc.integer({ min: 1, max: 400 }), async (updates, blockParameters) => {
        const reader = inMemoryBlockReader(updates);
        expect(await coordinateMedianBlockwise(reader, { blockParameters })).toEqual(coordinateMedian(updates));
        expect(await trimmedMeanBlockwise(reader, 0.25, { blockParameters })).toEqual(trimmedMean(updates, 0.25));
      }),
      { numRuns: 60 },
    );
  });

  it('read every update exactly once per block, never more than a block at a time', async () => {
    const normal = seededNormal(7);
    const updates = Array.from({ length: 9 }, () => gaussianVector(10_001, normal));
    const reader = countingReader(updates);
    const median = await coordinateMedianBlockwise(reader, { blockParameters: 1000 });
    expectSameBits(median, coordinateMedian(updates));
    expect(reader.reads).toEqual(updates.map(() => 11)); // ⌈10001 / 1000⌉ blocks, one pass
    expect(reader.maxRange()).toBe(1000);
  });

  it('refuse a reader that returns a short block or a non-finite value, and bad options', async () => {
    const good = [f32(1, 2, 3), f32(4, 5, 6), f32(7, 8, 9)];
    const short = { ...inMemoryBlockReader(good), readBlock: () => Promise.resolve(f32(1)) };
    expect(await asyncRefusalCode(() => coordinateMedianBlockwise(short))).toBe(AggregationErrorCode.LengthMismatch);
    const poisoned = {
      ...inMemoryBlockReader(good),
      readBlock: (k: number, s: number, e: number) =>
        Promise.resolve(k === 2 ? f32(1, Infinity, 3).subarray(s, e) : good[k]!.subarray(s, e)),
    };
    expect(await asyncRefusalCode(() => trimmedMeanBlockwise(poisoned, 0.2))).toBe(AggregationErrorCode.NonFiniteValue);
    const reader = inMemoryBlockReader(good);
    expect(await asyncRefusalCode(() => coordinateMedianBlockwise(reader, { blockParameters: 0 }))).toBe(
      AggregationErrorCode.InvalidParameter,
    );
    expect(await asyncRefusalCode(() => trimmedMeanBlockwise(reader, 0.5))).toBe(AggregationErrorCode.InvalidParameter);
    expect(await asyncRefusalCode(() => coordinateMedianBlockwise({ ...reader, count: 0 }))).toBe(
      AggregationErrorCode.EmptyAggregate,
    );
  });
});
