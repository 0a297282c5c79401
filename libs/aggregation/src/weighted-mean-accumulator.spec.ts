import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AggregationErrorCode, AggregationException } from './aggregation.exception';
import { WeightedMeanAccumulator } from './weighted-mean-accumulator';

const f32 = (...xs: number[]): Float32Array => Float32Array.from(xs);

/** Reference: the textbook formula, one coordinate at a time, in float64, rounded once. */
function batchWeightedMean(updates: readonly Float32Array[], weights: readonly number[]): Float32Array {
  const m = updates[0]!.length;
  const out = new Float32Array(m);
  const total = weights.reduce((a, b) => a + b, 0);
  for (let i = 0; i < m; i += 1) {
    let s = 0;
    updates.forEach((u, k) => (s += weights[k]! * u[i]!));
    out[i] = s / total;
  }
  return out;
}

/** Equal up to float32 rounding of a float64 quantity whose own error is ~1e-16 relative. */
function expectCloseF32(actual: Float32Array, expected: Float32Array): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < actual.length; i += 1) {
    expect(Math.abs(actual[i]! - expected[i]!)).toBeLessThanOrEqual(2 ** -23 * Math.abs(expected[i]!) + 1e-30);
  }
}

function expectRefusal(run: () => void, code: AggregationErrorCode): void {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(AggregationException);
  expect((caught as AggregationException).code).toBe(code);
  expect((caught as AggregationException).message.length).toBeGreaterThan(10);
}

const updateArb = (m: number) =>
  fc.float32Array({ minLength: m, maxLength: m, noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 });

describe('WeightedMeanAccumulator', () => {
  it('computes the weighted mean worked out by hand', () => {
    // (1·[1, 2, 3] + 3·[5, -2, 0]) / (1 + 3) = [16, -4, 3] / 4 = [4, -1, 0.75]
    const acc = new WeightedMeanAccumulator(3);
    acc.add(f32(1, 2, 3), 1);
    acc.add(f32(5, -2, 0), 3);
    expect(acc.count).toBe(2);
    expect(acc.totalWeight).toBe(4);
    expect(Array.from(acc.result())).toEqual([4, -1, 0.75]);
  });

  it('sums weights exactly for example counts', () => {
    const acc = new WeightedMeanAccumulator(1);
    [120, 7, 99_000, 1].forEach((w) => acc.add(f32(0), w));
    expect(acc.totalWeight).toBe(99_128);
    expect(acc.count).toBe(4);
  });

  it('ignores weights when unweighted', () => {
    // ([1, 2] + [3, 6]) / 2 = [2, 4], whatever the example counts
    const acc = new WeightedMeanAccumulator(2, { weighting: 'unweighted' });
    acc.add(f32(1, 2), 1000);
    acc.add(f32(3, 6), 1);
    expect(acc.totalWeight).toBe(2);
    expect(Array.from(acc.result())).toEqual([2, 4]);
  });

  it('keeps float64 accuracy where float32 summation would lose it', () => {
    // 1e8 + 1 + 1 + … in float32 stays 1e8 (ulp is 8); in float64 the mean is (1e8 + 1000) / 1001 exactly rounded.
    const acc = new WeightedMeanAccumulator(1, { weighting: 'unweighted' });
    acc.add(f32(1e8));
    for (let k = 0; k < 1000; k += 1) acc.add(f32(1));
    expect(acc.result()[0]).toBe(Math.fround((1e8 + 1000) / 1001));
  });

  it('writes into a caller buffer when given one, and checks its length', () => {
    const acc = new WeightedMeanAccumulator(2);
    acc.add(f32(1, 3), 1);
    const out = new Float32Array(2);
    expect(acc.result(out)).toBe(out);
    expect(Array.from(out)).toEqual([1, 3]);
    expectRefusal(() => acc.result(new Float32Array(3)), AggregationErrorCode.LengthMismatch);
  });

  it('is non-destructive: result() can be read, then more updates added', () => {
    const acc = new WeightedMeanAccumulator(1);
    acc.add(f32(2), 1);
    expect(acc.result()[0]).toBe(2);
    acc.add(f32(4), 1);
    expect(acc.result()[0]).toBe(3);
    acc.reset();
    expect(acc.count).toBe(0);
    expectRefusal(() => acc.result(), AggregationErrorCode.EmptyAggregate);
  });

  it('refuses bad input with a typed error and leaves the state unchanged', () => {
    const acc = new WeightedMeanAccumulator(3);
    acc.add(f32(1, 1, 1), 2);
    const before = acc.result();
    const refusals: [() => void, AggregationErrorCode][] = [
      [() => acc.add(f32(1, 1), 1), AggregationErrorCode.LengthMismatch],
      [() => acc.add(f32(1, 1, 1, 1), 1), AggregationErrorCode.LengthMismatch],
      [() => acc.add(f32(1, 1, 1), 0), AggregationErrorCode.InvalidWeight],
      [() => acc.add(f32(1, 1, 1), -3), AggregationErrorCode.InvalidWeight],
      [() => acc.add(f32(1, 1, 1), Number.NaN), AggregationErrorCode.InvalidWeight],
      [() => acc.add(f32(1, 1, 1), Number.POSITIVE_INFINITY), AggregationErrorCode.InvalidWeight],
      // The bad value is last, so a single fused pass would already have written the first two coordinates.
      [() => acc.add(f32(7, 7, Number.NaN), 1), AggregationErrorCode.NonFiniteValue],
      [() => acc.add(f32(7, 7, Number.NEGATIVE_INFINITY), 1), AggregationErrorCode.NonFiniteValue],
    ];
    for (const [run, code] of refusals) {
      expectRefusal(run, code);
      expect(acc.count).toBe(1);
      expect(acc.totalWeight).toBe(2);
      expect(acc.result()).toEqual(before);
    }
  });

  it('names the offending index for a non-finite value', () => {
    const acc = new WeightedMeanAccumulator(4);
    expect(() => acc.add(f32(0, 0, Number.POSITIVE_INFINITY, 0), 1)).toThrow(/index 2/);
  });

  it('rejects impossible construction parameters', () => {
    expectRefusal(() => new WeightedMeanAccumulator(0), AggregationErrorCode.InvalidParameter);
    expectRefusal(() => new WeightedMeanAccumulator(2.5), AggregationErrorCode.InvalidParameter);
  });

  it('equals the batch formula whatever the stream (property)', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 9 })
          .chain((m) =>
            fc.array(fc.tuple(updateArb(m), fc.integer({ min: 1, max: 100_000 })), { minLength: 1, maxLength: 8 }),
          ),
        (items) => {
          const acc = new WeightedMeanAccumulator(items[0]![0].length);
          items.forEach(([u, w]) => acc.add(u, w));
          const expected = batchWeightedMean(
            items.map(([u]) => u),
            items.map(([, w]) => w),
          );
          expectCloseF32(acc.result(), expected);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('does not depend on the order updates arrive in (property)', () => {
    // Integer values and weights keep every float64 partial sum exact, so any order gives the same bits.
    const intUpdate = (m: number) =>
      fc
        .array(fc.integer({ min: -1000, max: 1000 }), { minLength: m, maxLength: m })
        .map((xs) => Float32Array.from(xs));
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 6 })
          .chain((m) =>
            fc.array(fc.tuple(intUpdate(m), fc.integer({ min: 1, max: 1000 })), { minLength: 1, maxLength: 8 }),
          ),
        fc.infiniteStream(fc.nat()),
        (items, randomness) => {
          const shuffled = [...items];
          for (let k = shuffled.length - 1; k > 0; k -= 1) {
            const j = (randomness.next().value as number) % (k + 1);
            [shuffled[k], shuffled[j]] = [shuffled[j]!, shuffled[k]!];
          }
          const a = new WeightedMeanAccumulator(items[0]![0].length);
          const b = new WeightedMeanAccumulator(items[0]![0].length);
          items.forEach(([u, w]) => a.add(u, w));
          shuffled.forEach(([u, w]) => b.add(u, w));
          expect(b.result()).toEqual(a.result());
          expect(b.totalWeight).toBe(a.totalWeight);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('handles lengths that are not multiples of the unroll factor', () => {
    for (const m of [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17]) {
      const acc = new WeightedMeanAccumulator(m);
      const u = Float32Array.from({ length: m }, (_, i) => i + 1);
      acc.add(u, 2);
      acc.add(u, 5);
      expect(Array.from(acc.result())).toEqual(Array.from(u));
    }
  });

  describe('addValidated (fast path for already-validated updates)', () => {
    it('gives bit-for-bit the same mean, count and weight as add (property)', () => {
      fc.assert(
        fc.property(
          fc
            .integer({ min: 1, max: 19 })
            .chain((m) =>
              fc.array(fc.tuple(updateArb(m), fc.integer({ min: 1, max: 100_000 })), { minLength: 1, maxLength: 8 }),
            ),
          fc.constantFrom<'weighted' | 'unweighted'>('weighted', 'unweighted'),
          (items, weighting) => {
            const checked = new WeightedMeanAccumulator(items[0]![0].length, { weighting });
            const fast = new WeightedMeanAccumulator(items[0]![0].length, { weighting });
            items.forEach(([u, w]) => checked.add(u, w));
            items.forEach(([u, w]) => fast.addValidated(u, w));
            expect(fast.result()).toEqual(checked.result());
            expect(fast.count).toBe(checked.count);
            expect(fast.totalWeight).toBe(checked.totalWeight);
          },
        ),
        { numRuns: 100 },
      );
    });

    it('still refuses a wrong length or weight, leaving the state unchanged', () => {
      const acc = new WeightedMeanAccumulator(3);
      acc.addValidated(f32(1, 2, 3), 2);
      const before = acc.result();
      const refusals: [() => void, AggregationErrorCode][] = [
        [() => acc.addValidated(f32(1, 1), 1), AggregationErrorCode.LengthMismatch],
        [() => acc.addValidated(f32(1, 1, 1), 0), AggregationErrorCode.InvalidWeight],
        [() => acc.addValidated(f32(1, 1, 1), Number.NaN), AggregationErrorCode.InvalidWeight],
      ];
      for (const [run, code] of refusals) {
        expectRefusal(run, code);
        expect(acc.count).toBe(1);
        expect(acc.result()).toEqual(before);
      }
    });

    it("does not check finiteness: that is the caller's promise (a NaN reaches the sum)", () => {
      const acc = new WeightedMeanAccumulator(2);
      acc.addValidated(f32(1, Number.NaN), 1);
      expect(acc.count).toBe(1);
      expect(Number.isNaN(acc.result()[1])).toBe(true);
    });
  });
});
