import { describe, expect, it } from 'vitest';
import { AggregationErrorCode } from './aggregation.exception';
import { coordinateMedian } from './robust-aggregation';
import { asyncRefusalCode, f32, gaussianVector, refusalCode, seededNormal } from './robust.test-util';
import { inMemoryBlockReader } from './update-blocks';
import {
  screenStatistics,
  screenUpdates,
  screenUpdatesBlockwise,
  type ScreeningOptions,
  updateStatistics,
  updateStatisticsBlockwise,
} from './update-screening';

const mean = (updates: readonly Float32Array[]): Float32Array =>
  Float32Array.from(updates[0], (_, i) => updates.reduce((s, u) => s + u[i], 0) / updates.length);

/**
 * A round of honest silos: each update is a shared direction μ (‖μ‖ ≈ 1, the signal of the round) plus silo noise of
 * norm ≈ 2 (signal-to-noise 1:2, non-IID-like disagreement), m = 2000. The previous global update is μ plus the noise
 * of a mean of 8. `honest()` draws one more update from the same distribution.
 */
function honestRound(seed: number, m = 2000) {
  const normal = seededNormal(seed);
  const mu = gaussianVector(m, normal, 1 / Math.sqrt(m));
  const honest = (): Float32Array => Float32Array.from(mu, (x) => x + (2 / Math.sqrt(m)) * normal());
  const previousUpdate = Float32Array.from(mu, (x) => x + (2 / Math.sqrt(8 * m)) * normal());
  return { honest, previousUpdate };
}

function falseFlagTrials(trials: number, m: number, options: ScreeningOptions): number {
  let flaggedTrials = 0;
  for (let seed = 1; seed <= trials; seed += 1) {
    const { honest, previousUpdate } = honestRound(seed, m);
    const updates = Array.from({ length: 8 }, honest);
    const report = screenUpdates(updates, { aggregate: mean(updates), previousUpdate }, options);
    if (report.flagged.length > 0) flaggedTrials += 1;
  }
  return flaggedTrials;
}

describe('update screening', () => {
  it('computes norms and cosines of a hand-made round', () => {
    const stats = updateStatistics([f32(3, 4), f32(0, 2), f32(-1, 0)], {
      aggregate: f32(1, 0),
      previousUpdate: f32(0, 1),
    });
    expect(stats[0].norm).toBe(5);
    expect(stats[0].cosineToAggregate).toBeCloseTo(0.6, 12);
    expect(stats[0].cosineToPrevious).toBeCloseTo(0.8, 12);
    expect(stats[1]).toEqual({ norm: 2, cosineToAggregate: 0, cosineToPrevious: 1 });
    expect(stats[2]).toEqual({ norm: 1, cosineToAggregate: -1, cosineToPrevious: 0 });
    // No previous update (first round), and a zero update: cosines with a zero vector are 0.
    const first = updateStatistics([f32(0, 0), f32(1, 1)], { aggregate: f32(1, 1) });
    expect(first[0]).toEqual({ norm: 0, cosineToAggregate: 0, cosineToPrevious: null });
  });

  it('flags a ×10 scaled and a sign-flipped update among 8 honest ones, with reasons, and nothing else', () => {
    for (let seed = 1; seed <= 20; seed += 1) {
      const { honest, previousUpdate } = honestRound(seed);
      const updates = Array.from({ length: 8 }, honest);
      updates.splice(
        2,
        0,
        Float32Array.from(honest(), (x) => 10 * x),
      ); // index 2: scaled ×10
      updates.splice(
        6,
        0,
        Float32Array.from(honest(), (x) => -x),
      ); // index 6: sign flipped
      for (const aggregate of [coordinateMedian(updates), mean(updates)]) {
        const report = screenUpdates(updates, { aggregate, previousUpdate });
        expect(report.flagged).toEqual([2, 6]);
        const scaled = report.updates[2].flags.find((f) => f.statistic === 'norm');
        expect(scaled?.score).toBeGreaterThan(3.5);
        expect(scaled?.reason).toMatch(/^L2 norm [\d.]+ is [\d.]+ robust deviations above the round's median/);
        const flipped = report.updates[6].flags.map((f) => f.statistic);
        expect(flipped).toContain('cosine-to-previous');
        expect(report.updates[6].flags.every((f) => f.score < -3.5 && / below /.test(f.reason))).toBe(true);
        expect(report.excluded).toEqual([]);
      }
    }
  });

  it('flags no honest update in 200 seeded attack-free rounds of 8 (false-flag rate 0/200 at the defaults)', () => {
    expect(falseFlagTrials(200, 2000, {})).toBe(0);
  });

  it('without the scale floors the bare MAD rule on 8 values false-flags 41 of the same 200 rounds (why the floors exist)', () => {
    expect(falseFlagTrials(200, 2000, { normScaleFloor: 0, cosineScaleFloor: 0 })).toBe(41);
  });

  it('lists flagged updates for exclusion only when asked', () => {
    const { honest, previousUpdate } = honestRound(99);
    const updates = [...Array.from({ length: 8 }, honest), Float32Array.from(honest(), (x) => -5 * x)];
    const report = screenUpdates(updates, { aggregate: coordinateMedian(updates), previousUpdate }, { exclude: true });
    expect(report.flagged).toEqual([8]);
    expect(report.excluded).toEqual([8]);
    expect(report.updates[8].excluded).toBe(true);
    expect(report.updates[0].excluded).toBe(false);
    expect(report.rule).toEqual({
      method: 'median-absolute-deviation',
      threshold: 3.5,
      normScaleFloor: 0.05,
      cosineScaleFloor: 0.05,
      exclude: true,
      applied: true,
    });
  });

  it('the rule alone, on hand-made statistics: median, scaled MAD and floors', () => {
    // norms 1, 1.1, 0.9, 1, 1.05, 5 → median 1.025; |dev| = .025 .075 .125 .025 .025 3.975 → MAD .05 → ×1.4826 = .07413
    const stats = [1, 1.1, 0.9, 1, 1.05, 5].map((norm) => ({ norm, cosineToAggregate: 0.5, cosineToPrevious: null }));
    const report = screenStatistics(stats);
    const norm = report.summaries[0];
    expect(norm.median).toBeCloseTo(1.025, 12);
    expect(norm.scaledMad).toBeCloseTo(0.07413, 5);
    expect(norm.scale).toBeCloseTo(0.07413, 5); // floor 0.05 × 1.025 is lower
    expect(report.flagged).toEqual([5]);
    expect(report.updates[5].flags[0].score).toBeCloseTo((5 - 1.025) / 0.07413, 2);
    // All cosines equal: MAD 0, the floor keeps the scale at 0.05 and nothing is flagged.
    expect(report.summaries[1]).toMatchObject({ median: 0.5, scaledMad: 0, scale: 0.05 });
    // A free-rider with a zero update is flagged below.
    const freeRider = screenStatistics([
      ...stats.slice(0, 5),
      { norm: 0, cosineToAggregate: 0.5, cosineToPrevious: null },
    ]);
    expect(freeRider.updates[5].flags[0].reason).toMatch(/ below the round's median/);
  });

  it('below 3 updates reports statistics but flags nothing', () => {
    const report = screenUpdates([f32(1, 0), f32(-100, 0)], { aggregate: f32(1, 0) });
    expect(report.rule.applied).toBe(false);
    expect(report.flagged).toEqual([]);
    expect(report.updates[1].norm).toBe(100);
  });

  it('blockwise equals in memory (statistics bit for bit at the default block size)', async () => {
    const { honest, previousUpdate } = honestRound(5, 70_001);
    const updates = [...Array.from({ length: 6 }, honest), Float32Array.from(honest(), (x) => 10 * x)];
    const references = { aggregate: mean(updates), previousUpdate };
    const reader = inMemoryBlockReader(updates);
    expect(await updateStatisticsBlockwise(reader, references)).toEqual(updateStatistics(updates, references));
    expect(await screenUpdatesBlockwise(reader, references)).toEqual(screenUpdates(updates, references));
    const small = await updateStatisticsBlockwise(reader, references, { blockParameters: 1000 });
    small.forEach((s, k) => expect(s.norm).toBeCloseTo(updateStatistics(updates, references)[k].norm, 9));
  });

  it('refuses mismatched references and bad options', async () => {
    const updates = [f32(1, 0), f32(0, 1), f32(1, 1)];
    expect(refusalCode(() => screenUpdates(updates, { aggregate: f32(1) }))).toBe(AggregationErrorCode.LengthMismatch);
    expect(
      refusalCode(() => screenUpdates(updates, { aggregate: f32(1, 0), previousUpdate: f32(Number.NaN, 0) })),
    ).toBe(AggregationErrorCode.NonFiniteValue);
    expect(refusalCode(() => screenUpdates(updates, { aggregate: f32(1, 0) }, { threshold: 0 }))).toBe(
      AggregationErrorCode.InvalidParameter,
    );
    expect(refusalCode(() => screenStatistics([], { normScaleFloor: -1 }))).toBe(AggregationErrorCode.InvalidParameter);
    expect(
      await asyncRefusalCode(() => screenUpdatesBlockwise(inMemoryBlockReader(updates), { aggregate: f32(1, 0, 0) })),
    ).toBe(AggregationErrorCode.LengthMismatch);
  });
});
