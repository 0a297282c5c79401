import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AggregationErrorCode, AggregationException } from './aggregation.exception';
import { FedAvgAggregator } from './delta-aggregator';

const f32 = (...xs: number[]): Float32Array => Float32Array.from(xs);

function codeOf(run: () => unknown): AggregationErrorCode | undefined {
  try {
    run();
  } catch (error) {
    if (error instanceof AggregationException) return error.code;
    throw error;
  }
  return undefined;
}

const updateArb = (m: number) =>
  fc.float32Array({ minLength: m, maxLength: m, noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 });

describe('FedAvgAggregator', () => {
  it('validates every update by default', () => {
    const aggregator = new FedAvgAggregator(2);
    expect(aggregator.updatesPrevalidated).toBe(false);
    expect(codeOf(() => aggregator.add(f32(1, Number.POSITIVE_INFINITY), 1))).toBe(AggregationErrorCode.NonFiniteValue);
    expect(aggregator.count).toBe(0);
  });

  it('with updatesPrevalidated gives the same delta, count, weight and trace as the validating path (property)', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 21 })
          .chain((m) =>
            fc.array(fc.tuple(updateArb(m), fc.integer({ min: 1, max: 50_000 })), { minLength: 1, maxLength: 6 }),
          ),
        (items) => {
          const m = items[0]![0].length;
          const checked = new FedAvgAggregator(m);
          const fast = new FedAvgAggregator(m, { updatesPrevalidated: true });
          for (const [u, w] of items) {
            expect(fast.add(u, w)).toEqual(checked.add(u, w));
          }
          const a = checked.finish();
          const b = fast.finish();
          expect(b.delta).toEqual(a.delta);
          expect(b.count).toBe(a.count);
          expect(b.totalWeight).toBe(a.totalWeight);
          expect(b.trace).toEqual(a.trace);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('with updatesPrevalidated refuses a non-finite aggregate at finish, so it cannot reach the model', () => {
    const fast = new FedAvgAggregator(3, { updatesPrevalidated: true });
    fast.add(f32(1, 2, 3), 1);
    fast.add(f32(1, Number.NaN, 3), 1); // a broken promise: not refused here (one pass, no check)
    expect(fast.count).toBe(2);
    expect(codeOf(() => fast.finish())).toBe(AggregationErrorCode.NonFiniteValue);
  });

  it('with updatesPrevalidated still refuses a wrong length or weight', () => {
    const fast = new FedAvgAggregator(2, { updatesPrevalidated: true });
    expect(codeOf(() => fast.add(f32(1), 1))).toBe(AggregationErrorCode.LengthMismatch);
    expect(codeOf(() => fast.add(f32(1, 1), -1))).toBe(AggregationErrorCode.InvalidWeight);
    expect(fast.count).toBe(0);
  });
});
