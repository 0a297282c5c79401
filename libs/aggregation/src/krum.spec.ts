import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AggregationErrorCode } from './aggregation.exception';
import { checkKrumOptions, krum, krumBlockwise, krumSelect } from './krum';
import {
  around,
  asyncRefusalCode,
  countingReader,
  expectSameBits,
  f32,
  gaussianVector,
  maxAbsDifference,
  points,
  refusalCode,
  seededNormal,
} from './robust.test-util';
import { inMemoryBlockReader } from './update-blocks';
import { pairwiseSquaredDistances } from './update-geometry';

describe('Krum and Multi-Krum (Blanchard et al. 2017)', () => {
  it('scores a 1-D example worked out by hand and picks the best-surrounded update', () => {
    // n = 5, f = 1 → each score sums the n − f − 2 = 2 smallest squared distances.
    // 0: {1, 4, 9, 10000} → 5;  1: {1, 1, 4, 9801} → 2;  2: {4, 1, 1, 9604} → 2;  3: {9, 4, 1, 9409} → 5;
    // 100: {10000, 9801, 9604, 9409} → 19013. Tie 1 = 2 → the lower index (1) wins.
    const updates = points([0], [1], [2], [3], [100]);
    const result = krum(updates, { byzantine: 1 });
    expect(result.trace.scores).toEqual([5, 2, 2, 5, 19013]);
    expect(result.trace.selected).toEqual([1]);
    expect(Array.from(result.delta)).toEqual([1]);
    // Multi-Krum, m = 3: indices 1, 2, then 0 (tie with 3 at 5, lower index) → mean (1 + 2 + 0)/3 = 1.
    const multi = krum(updates, { byzantine: 1, selected: 3 });
    expect(multi.trace.selected).toEqual([1, 2, 0]);
    expect(Array.from(multi.delta)).toEqual([1]);
    expect(multi.trace).toMatchObject({ step: 'krum', count: 5, byzantine: 1, selectedCount: 3 });
  });

  it('picks the centre of an honest cross and ignores two colluding attackers (2-D, by hand)', () => {
    // n = 7, f = 2 → 3 nearest. Centre (0,0): {1,1,1,1,…} → 3. Arm (1,0): {1, 2, 2, 4} → 5.
    // Attacker (10,10): {0.25, 181, 181, …} → 362.25; they sit together, far from everyone else.
    const updates = points([10, 10], [1, 0], [0, 1], [0, 0], [-1, 0], [0, -1], [10, 10.5]);
    const result = krum(updates, { byzantine: 2 });
    expect(result.trace.selected).toEqual([3]);
    expect(Array.from(result.delta)).toEqual([0, 0]);
    expect(result.trace.scores[1]).toBe(5);
    expect(result.trace.scores[0]).toBe(362.25);
    // Multi-Krum with m = n − f = 5 averages exactly the honest five: mean (0, 0).
    const multi = krum(updates, { byzantine: 2, selected: 5 });
    expect([...multi.trace.selected].sort()).toEqual([1, 2, 3, 4, 5]);
    expect(Array.from(multi.delta)).toEqual([0, 0]);
  });

  it('never selects an attacker placed far from honest updates, while their mean is dragged away (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 3 }),
        fc.integer(),
        fc.double({ min: 5, max: 1e6, noNaN: true }),
        (f, seed, distance) => {
          const n = 2 * f + 3 + (seed & 3);
          const normal = seededNormal(seed);
          const centre = gaussianVector(20, normal);
          const honest = Array.from({ length: n - f }, () => around(centre, normal, 0.1));
          const direction = gaussianVector(20, normal);
          const attackers = Array.from({ length: f }, (_, a) =>
            Float32Array.from(centre, (x, i) => x + distance * (a + 1) * direction[i]!),
          );
          const updates = [...attackers, ...honest];
          const { trace } = krum(updates, { byzantine: f, selected: n - f });
          expect(trace.selected.every((k) => k >= f)).toBe(true);
        },
      ),
      { numRuns: 80 },
    );
  });

  it('blockwise equals in memory: same selection and scores, the same delta bit for bit at the default block size', async () => {
    const normal = seededNormal(11);
    const centre = gaussianVector(70_001, normal, 0.01);
    const updates = [
      ...Array.from({ length: 9 }, () => around(centre, normal, 0.01)),
      Float32Array.from(centre, (x) => -10 * x),
    ];
    const options = { byzantine: 2, selected: 4 };
    const inMemory = krum(updates, options);
    const reader = countingReader(updates);
    const blockwise = await krumBlockwise(reader, options);
    expect(blockwise.trace).toEqual(inMemory.trace);
    expectSameBits(blockwise.delta, inMemory.delta);
    expect(inMemory.trace.selected).not.toContain(9);
    // Two passes: every update once for the distances (2 blocks), only the 4 selected again.
    expect(reader.reads.filter((r) => r === 4)).toHaveLength(4);
    expect(reader.reads.filter((r) => r === 2)).toHaveLength(6);
    // Smaller blocks change only the summation order of the distances: equal to float tolerance.
    const small = await krumBlockwise(inMemoryBlockReader(updates), { ...options, blockParameters: 999 });
    expect(small.trace.selected).toEqual(inMemory.trace.selected);
    small.trace.scores.forEach((s, k) =>
      expect(Math.abs(s - inMemory.trace.scores[k]!)).toBeLessThanOrEqual(1e-12 * s),
    );
    expect(maxAbsDifference(small.delta, inMemory.delta)).toBe(0);
  });

  it('distances are exact on small integers and symmetric with a zero diagonal', () => {
    const d = pairwiseSquaredDistances(points([0, 0], [3, 4], [6, 8]));
    expect(Array.from(d)).toEqual([0, 25, 100, 25, 0, 25, 100, 25, 0]);
  });

  it('refuses n ≤ 2f + 2, bad f and m, with the numbers in the message', async () => {
    const four = points([0], [1], [2], [3]);
    expect(refusalCode(() => krum(four, { byzantine: 1 }))).toBe(AggregationErrorCode.TooFewUpdates);
    expect(() => checkKrumOptions(6, { byzantine: 2 })).toThrow(/n > 2f \+ 2 = 6 updates; the round has 6/);
    expect(refusalCode(() => krum(four, { byzantine: -1 }))).toBe(AggregationErrorCode.InvalidParameter);
    expect(refusalCode(() => krum(four, { byzantine: 0.5 }))).toBe(AggregationErrorCode.InvalidParameter);
    expect(refusalCode(() => krum(four, { byzantine: 0, selected: 0 }))).toBe(AggregationErrorCode.InvalidParameter);
    expect(refusalCode(() => krum(points([0], [1], [2], [3], [4]), { byzantine: 1, selected: 5 }))).toBe(
      AggregationErrorCode.InvalidParameter,
    );
    expect(refusalCode(() => krum([f32(1), f32(2), f32(Number.NaN)], { byzantine: 0 }))).toBe(
      AggregationErrorCode.NonFiniteValue,
    );
    expect(refusalCode(() => krumSelect(new Float64Array(4), 3, { byzantine: 0 }))).toBe(
      AggregationErrorCode.LengthMismatch,
    );
    // The blockwise version refuses before reading anything.
    const reader = countingReader(four);
    expect(await asyncRefusalCode(() => krumBlockwise(reader, { byzantine: 1 }))).toBe(
      AggregationErrorCode.TooFewUpdates,
    );
    expect(reader.reads).toEqual([0, 0, 0, 0]);
  });
});
