import { describe, expect, it } from 'vitest';
import { AggregationErrorCode } from './aggregation.exception';
import { geometricMedian } from './geometric-median';
import { krum } from './krum';
import { boundNorms } from './norm-bound';
import { coordinateMedian, trimmedMean } from './robust-aggregation';
import {
  aggregateRobust,
  aggregateRobustBlockwise,
  type AggregationChoice,
  checkAggregationChoice,
  type RobustAggregatorSpec,
} from './robust-aggregator';
import {
  around,
  asyncRefusalCode,
  expectSameBits,
  gaussianVector,
  refusalCode,
  seededNormal,
} from './robust.test-util';
import { inMemoryBlockReader } from './update-blocks';

const SPECS: readonly RobustAggregatorSpec[] = [
  { kind: 'coordinate-median' },
  { kind: 'trimmed-mean', trimFraction: 0.2 },
  { kind: 'krum', byzantine: 2 },
  { kind: 'krum', byzantine: 2, selected: 5 },
  { kind: 'geometric-median', tolerance: 1e-8, maxIterations: 200 },
];

function round(seed: number): Float32Array[] {
  const normal = seededNormal(seed);
  const centre = gaussianVector(70_001, normal, 0.01);
  const honest = Array.from({ length: 7 }, () => around(centre, normal, 0.01));
  return [...honest, Float32Array.from(honest[0]!, (x) => 10 * x), Float32Array.from(honest[1]!, (x) => -x)];
}

describe('robust aggregation choice (dispatch, composition, plan-time checks)', () => {
  it('each choice gives the result of its own function, with its trace', () => {
    const updates = round(1);
    const expected: Record<string, Float32Array> = {
      'coordinate-median': coordinateMedian(updates),
      'trimmed-mean': trimmedMean(updates, 0.2),
    };
    const results = SPECS.map((spec) => aggregateRobust({ aggregator: spec }, updates));
    expectSameBits(results[0]!.delta, expected['coordinate-median']!);
    expect(results[0]!.trace).toEqual([{ step: 'coordinate-median', count: 9 }]);
    expectSameBits(results[1]!.delta, expected['trimmed-mean']!);
    expect(results[1]!.trace).toEqual([{ step: 'trimmed-mean', count: 9, trimFraction: 0.2, trimmedEachSide: 1 }]);
    expectSameBits(results[2]!.delta, krum(updates, { byzantine: 2 }).delta);
    expect(results[3]!.trace[0]).toMatchObject({ step: 'krum', selectedCount: 5 });
    expectSameBits(results[4]!.delta, geometricMedian(updates, { tolerance: 1e-8, maxIterations: 200 }).delta);
    results.forEach((r) => expect(r.updateTrace).toEqual(updates.map(() => [])));
  });

  it('blockwise equals in memory for every choice, with and without norm bounding', async () => {
    const updates = round(2);
    const reader = inMemoryBlockReader(updates);
    for (const spec of SPECS) {
      for (const normBound of [undefined, { mode: 'median-multiple', multiplier: 1.5 } as const]) {
        const choice: AggregationChoice = normBound ? { aggregator: spec, normBound } : { aggregator: spec };
        const inMemory = aggregateRobust(choice, updates);
        const blockwise = await aggregateRobustBlockwise(choice, reader);
        expectSameBits(blockwise.delta, inMemory.delta);
        expect(blockwise.trace).toEqual(inMemory.trace);
        expect(blockwise.updateTrace).toEqual(inMemory.updateTrace);
      }
    }
  });

  it('norm bounding runs first: its trace leads, each update gets its clip record, the aggregator sees bounded updates', () => {
    const updates = round(3);
    const normBound = { mode: 'fixed', maxNorm: 0.5 } as const;
    const result = aggregateRobust({ aggregator: { kind: 'coordinate-median' }, normBound }, updates);
    expect(result.trace.map((t) => t.step)).toEqual(['norm-bound', 'coordinate-median']);
    expect(result.updateTrace[7]![0]).toMatchObject({ step: 'clip', clippingNorm: 0.5 });
    expectSameBits(result.delta, coordinateMedian(boundNorms(updates, normBound).updates));
  });

  it('checks a plan before any round: parameters, and Krum against the number of silos', () => {
    expect(refusalCode(() => checkAggregationChoice({ aggregator: { kind: 'krum', byzantine: 2 } }, 6))).toBe(
      AggregationErrorCode.TooFewUpdates,
    );
    expect(() => checkAggregationChoice({ aggregator: { kind: 'krum', byzantine: 2 } }, 7)).not.toThrow();
    expect(() => checkAggregationChoice({ aggregator: { kind: 'krum', byzantine: 2, selected: 3 } })).not.toThrow();
    expect(refusalCode(() => checkAggregationChoice({ aggregator: { kind: 'krum', byzantine: -2 } }))).toBe(
      AggregationErrorCode.InvalidParameter,
    );
    expect(refusalCode(() => checkAggregationChoice({ aggregator: { kind: 'trimmed-mean', trimFraction: 0.6 } }))).toBe(
      AggregationErrorCode.InvalidParameter,
    );
    expect(
      refusalCode(() => checkAggregationChoice({ aggregator: { kind: 'geometric-median', maxIterations: 0 } })),
    ).toBe(AggregationErrorCode.InvalidParameter);
    expect(
      refusalCode(() =>
        checkAggregationChoice({
          aggregator: { kind: 'fedavg' },
          normBound: { mode: 'median-multiple', multiplier: -1 },
        }),
      ),
    ).toBe(AggregationErrorCode.InvalidParameter);
    expect(
      refusalCode(() => checkAggregationChoice({ aggregator: { kind: 'bulyan' } as unknown as RobustAggregatorSpec })),
    ).toBe(AggregationErrorCode.InvalidParameter);
  });

  it('refuses FedAvg (it streams through FedAvgAggregator) and too small rounds', async () => {
    const updates = round(4);
    expect(refusalCode(() => aggregateRobust({ aggregator: { kind: 'fedavg' } }, updates))).toBe(
      AggregationErrorCode.InvalidParameter,
    );
    expect(
      await asyncRefusalCode(() =>
        aggregateRobustBlockwise({ aggregator: { kind: 'krum', byzantine: 4 } }, inMemoryBlockReader(updates)),
      ),
    ).toBe(AggregationErrorCode.TooFewUpdates);
  });
});
