import { describe, expect, it } from 'vitest';
import { FedAvgAggregator } from './delta-aggregator';
import { createDpFedAvgAggregator } from './dp-fed-avg';
import { aggregateRound, fedAvg, type SiloUpdate } from './round-aggregation';
import { FedAdamServerOptimizer, FedAvgServerOptimizer } from './server-optimizer';

const f32 = (...xs: number[]): Float32Array => Float32Array.from(xs);

/** Updates as the hub reads them: one at a time, asynchronously, from storage. */
async function* fromStorage(items: readonly SiloUpdate[]): AsyncGenerator<SiloUpdate> {
  for (const item of items) {
    await Promise.resolve();
    yield item;
  }
}

describe('fedAvg (McMahan et al. 2017, Algorithm 1)', () => {
  it('weights deltas by example counts', () => {
    // global [1, 2]; Δ₁ = [1, -1] (n=1), Δ₂ = [4, 2] (n=3): mean = [13, 5]/4 = [3.25, 1.25] → [4.25, 3.25]
    const updates = [
      { update: f32(1, -1), weight: 1 },
      { update: f32(4, 2), weight: 3 },
    ];
    expect(Array.from(fedAvg(f32(1, 2), updates))).toEqual([4.25, 3.25]);
    // η = 2 → [1 + 6.5, 2 + 2.5]
    expect(Array.from(fedAvg(f32(1, 2), updates, 2))).toEqual([7.5, 4.5]);
  });
});

describe('aggregateRound', () => {
  it('composes a streaming strategy with a server optimizer and collects the trace in order', async () => {
    const outcome = await aggregateRound(
      f32(0, 0),
      fromStorage([
        { update: f32(2, 0), weight: 1, siloId: 'a' },
        { update: f32(0, 2), weight: 1, siloId: 'b' },
      ]),
      new FedAvgAggregator(2),
      new FedAvgServerOptimizer({ length: 2 }),
    );
    expect(Array.from(outcome.weights)).toEqual([1, 1]);
    expect(outcome.trace.map((t) => t.record.step)).toEqual(['mean', 'server-optimizer']);
  });

  it('runs DP-FedAvg under FedAdam with per-silo clip records', async () => {
    // A stand-in mechanism that adds zero noise but claims z·S = 1 (the wrapper refuses less).
    const noise = (sum: Float64Array) => ({ sum: sum.slice(), plan: { effectiveStddev: 1, granularity: 2 ** -24 } });
    const outcome = await aggregateRound(
      f32(0, 0),
      [
        { update: f32(3, 4), weight: 10, siloId: 'a' },
        { update: f32(0, 0.5), weight: 20, siloId: 'b' },
      ],
      createDpFedAvgAggregator(2, { clippingNorm: 1, noiseMultiplier: 1, expectedSilos: 2 }, noise),
      new FedAdamServerOptimizer({ length: 2, serverLearningRate: 0.1 }),
    );
    expect(outcome.trace.map((t) => `${t.siloId ?? '-'}:${t.record.step}`)).toEqual([
      'a:weight',
      'a:clip',
      'b:weight',
      'b:clip',
      '-:mean',
      '-:noise',
      '-:server-optimizer',
    ]);
    expect(outcome.count).toBe(2);
    expect(outcome.weights.every((x) => Number.isFinite(x))).toBe(true);
  });
});
