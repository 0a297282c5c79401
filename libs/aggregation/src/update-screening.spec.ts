import { describe, expect, it } from 'vitest';
import { AggregationErrorCode } from './aggregation.exception';
import { coordinateMedian } from './robust-aggregation';
import { asyncRefusalCode, f32, gaussianVector, refusalCode, seededNormal } from './robust.test-util';
import { inMemoryBlockReader } from './update-blocks';
import {
  DEFAULT_SCALE_FLOORS,
  madSmallSampleFactor,
  screenStatistics,
  screenUpdates,
  screenUpdatesBlockwise,
  type ScreeningOptions,
  updateStatistics,
  updateStatisticsBlockwise,
} from './update-screening';

/**
 * The first calibration's floors (0.05 each, before the heart-disease demo's rounds set the defaults): the tests of
 * the rule's mechanics on synthetic rounds, whose silos are alike, use them.
 */
const FIRST_FLOORS = { normScaleFloor: 0.05, cosineScaleFloor: 0.05 } as const;

const mean = (updates: readonly Float32Array[]): Float32Array =>
  Float32Array.from(updates[0]!, (_, i) => updates.reduce((s, u) => s + u[i]!, 0) / updates.length);

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
    expect(stats[0]!.norm).toBe(5);
    expect(stats[0]!.cosineToAggregate).toBeCloseTo(0.6, 12);
    expect(stats[0]!.cosineToPrevious).toBeCloseTo(0.8, 12);
    expect(stats[1]).toEqual({ norm: 2, cosineToAggregate: 0, cosineToPrevious: 1 });
    expect(stats[2]).toEqual({ norm: 1, cosineToAggregate: -1, cosineToPrevious: 0 });
    // No previous update (first round), and a zero update: cosines with a zero vector are 0.
    const first = updateStatistics([f32(0, 0), f32(1, 1)], { aggregate: f32(1, 1) });
    expect(first[0]).toEqual({ norm: 0, cosineToAggregate: 0, cosineToPrevious: null });
  });

  it('flags a ×10 scaled and a sign-flipped update among 8 alike honest ones (first floors), with reasons, and nothing else', () => {
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
        const report = screenUpdates(updates, { aggregate, previousUpdate }, FIRST_FLOORS);
        expect(report.flagged).toEqual([2, 6]);
        const scaled = report.updates[2]!.flags.find((f) => f.statistic === 'norm');
        expect(scaled?.score).toBeGreaterThan(3.5);
        expect(scaled?.reason).toMatch(/^L2 norm [\d.]+ is [\d.]+ robust deviations above the round's median/);
        const flipped = report.updates[6]!.flags.map((f) => f.statistic);
        expect(flipped).toContain('cosine-to-previous');
        expect(report.updates[6]!.flags.every((f) => f.score < -3.5 && / below /.test(f.reason))).toBe(true);
        expect(report.excluded).toEqual([]);
      }
    }
  });

  it('flags no honest update in 200 seeded attack-free rounds of 8 (false-flag rate 0/200 at the first floors and the defaults)', () => {
    expect(falseFlagTrials(200, 2000, FIRST_FLOORS)).toBe(0);
    expect(falseFlagTrials(200, 2000, {})).toBe(0);
  }, 60_000);

  it('without the scale floors the bare MAD rule on 8 values false-flags 22 of the same 200 rounds (why the floors exist)', () => {
    // screenStatistics without `parameters`: no 1/√m floor either, only the (corrected) MAD.
    let flagged = 0;
    for (let seed = 1; seed <= 200; seed += 1) {
      const { honest, previousUpdate } = honestRound(seed, 2000);
      const updates = Array.from({ length: 8 }, honest);
      const statistics = updateStatistics(updates, { aggregate: mean(updates), previousUpdate });
      if (screenStatistics(statistics, { normScaleFloor: 0, cosineScaleFloor: 0 }).flagged.length > 0) flagged += 1;
    }
    // 33 when norms were also flagged below the median; short updates are no longer outliers (see the defaults).
    expect(flagged).toBe(22);
  }, 60_000);

  it('lists flagged updates for exclusion only when asked', () => {
    const { honest, previousUpdate } = honestRound(99);
    const updates = [...Array.from({ length: 8 }, honest), Float32Array.from(honest(), (x) => -5 * x)];
    const report = screenUpdates(
      updates,
      { aggregate: coordinateMedian(updates), previousUpdate },
      { ...FIRST_FLOORS, exclude: true },
    );
    expect(report.flagged).toEqual([8]);
    expect(report.excluded).toEqual([8]);
    expect(report.updates[8]!.excluded).toBe(true);
    expect(report.updates[0]!.excluded).toBe(false);
    expect(report.rule).toEqual({
      method: 'median-absolute-deviation',
      threshold: 3.5,
      normScaleFloor: 0.05,
      cosineScaleFloor: 0.05,
      exclude: true,
      applied: true,
    });
  });

  it('the rule alone, on hand-made statistics: log-norm median, corrected scaled MAD and floors', () => {
    // Norms are compared as logarithms: ln of 1, 1.1, 0.9, 1, 1.05, 5 → median (ln 1 + ln 1.05)/2, reported as the
    // norm √1.05; MAD of the logs × 1.4826 × b₆ (1.2, Croux & Rousseeuw's factor for six values).
    const norms = [1, 1.1, 0.9, 1, 1.05, 5];
    const stats = norms.map((norm) => ({ norm, cosineToAggregate: 0.5, cosineToPrevious: null }));
    const report = screenStatistics(stats, FIRST_FLOORS);
    const norm = report.summaries[0]!;
    const logMedian = Math.log(1.05) / 2;
    const deviations = norms.map((x) => Math.abs(Math.log(x) - logMedian)).sort((a, b) => a - b);
    const scaledMad = ((deviations[2]! + deviations[3]!) / 2) * 1.4826 * 1.2;
    expect(norm.median).toBeCloseTo(Math.sqrt(1.05), 12);
    expect(norm.scaledMad).toBeCloseTo(scaledMad, 12);
    expect(norm.scale).toBeCloseTo(scaledMad, 12); // above the floor 0.05
    expect(report.flagged).toEqual([5]);
    expect(report.updates[5]!.flags[0]!.score).toBeCloseTo((Math.log(5) - logMedian) / scaledMad, 9);
    expect(report.updates[5]!.flags[0]!.median).toBeCloseTo(Math.sqrt(1.05), 12);
    expect(report.updates[5]!.flags[0]!.reason).toMatch(
      /^L2 norm 5 is [\d.]+ robust deviations above the round's median 1\.025 \(×4\.88 the median; log scale [\d.]+, threshold 3\.5\)$/,
    );
    // All cosines equal: MAD 0, the floor keeps the scale at 0.05 and nothing is flagged.
    expect(report.summaries[1]).toMatchObject({ median: 0.5, scaledMad: 0, scale: 0.05 });
    // Norms are flagged above the median only: a free-rider's zero update is not flagged.
    const freeRider = screenStatistics(
      [...stats.slice(0, 5), { norm: 0, cosineToAggregate: 0.5, cosineToPrevious: null }],
      FIRST_FLOORS,
    );
    expect(freeRider.flagged).toEqual([]);
    // A round of zero updates: every log norm is the same very low value, nothing is flagged.
    const zeros = screenStatistics(
      [0, 0, 0, 0].map((n) => ({ norm: n, cosineToAggregate: 0, cosineToPrevious: null })),
    );
    expect(zeros.flagged).toEqual([]);
  });

  it('corrects the scaled MAD for small rounds: b_n makes it an unbiased estimate of σ for normal values', () => {
    // Seeded simulation: the mean of b_n · 1.4826 · MAD over 20,000 samples of n standard normal values is 1 ± 2.5%.
    const normal = seededNormal(2024);
    for (const n of [3, 4, 5, 6, 8, 10, 16]) {
      let sum = 0;
      const trials = 20_000;
      for (let t = 0; t < trials; t += 1) {
        const values = Array.from({ length: n }, normal);
        const summary = screenStatistics(
          values.map((c) => ({ norm: 1, cosineToAggregate: c, cosineToPrevious: null })),
          { cosineScaleFloor: 0 },
        ).summaries[1]!;
        sum += summary.scaledMad;
      }
      expect(Math.abs(sum / trials - 1)).toBeLessThan(0.025);
    }
    expect(madSmallSampleFactor(4)).toBe(1.363);
    expect(madSmallSampleFactor(20)).toBeCloseTo(20 / 19.2, 12);
  }, 60_000);

  it('below 3 updates reports statistics but flags nothing', () => {
    const report = screenUpdates([f32(1, 0), f32(-100, 0)], { aggregate: f32(1, 0) });
    expect(report.rule.applied).toBe(false);
    expect(report.flagged).toEqual([]);
    expect(report.updates[1]!.norm).toBe(100);
  });

  it('blockwise equals in memory (statistics bit for bit at the default block size)', async () => {
    const { honest, previousUpdate } = honestRound(5, 70_001);
    const updates = [...Array.from({ length: 6 }, honest), Float32Array.from(honest(), (x) => 10 * x)];
    const references = { aggregate: mean(updates), previousUpdate };
    const reader = inMemoryBlockReader(updates);
    expect(await updateStatisticsBlockwise(reader, references)).toEqual(updateStatistics(updates, references));
    expect(await screenUpdatesBlockwise(reader, references)).toEqual(screenUpdates(updates, references));
    const small = await updateStatisticsBlockwise(reader, references, { blockParameters: 1000 });
    small.forEach((s, k) => expect(s.norm).toBeCloseTo(updateStatistics(updates, references)[k]!.norm, 9));
  });

  it('raises both floors to 1/√m for a model of m parameters, and reports the floors it applied', () => {
    const { honest, previousUpdate } = honestRound(3, 14);
    const updates = Array.from({ length: 5 }, honest);
    const report = screenUpdates(updates, { aggregate: mean(updates), previousUpdate }, FIRST_FLOORS);
    expect(report.rule.normScaleFloor).toBeCloseTo(1 / Math.sqrt(14), 12);
    expect(report.rule.cosineScaleFloor).toBeCloseTo(1 / Math.sqrt(14), 12);
    report.summaries.forEach((s) => expect(s.scale).toBeGreaterThanOrEqual(1 / Math.sqrt(14)));
    // A plan's larger floor wins; with m = 2000 the plan's 0.05 is above 1/√m.
    expect(screenUpdates(updates, { aggregate: mean(updates) }, { cosineScaleFloor: 0.5 }).rule.cosineScaleFloor).toBe(
      0.5,
    );
    const big = honestRound(3, 2000);
    const bigUpdates = Array.from({ length: 5 }, big.honest);
    expect(screenUpdates(bigUpdates, { aggregate: mean(bigUpdates) }, FIRST_FLOORS).rule.normScaleFloor).toBe(0.05);
    // The defaults are above 1/√14 = 0.267: a 14-parameter model's round gets them unchanged.
    expect(screenUpdates(updates, { aggregate: mean(updates) }).rule).toMatchObject({
      normScaleFloor: 0.35,
      cosineScaleFloor: 0.45,
    });
  });

  it('defaults: a hospital whose data differs is not an outlier (a real heart-disease round, hand-computed)', () => {
    expect(DEFAULT_SCALE_FLOORS).toEqual({ norm: 0.35, cosine: 0.45 });
    // Round 9 of an attack-free heart-disease run (docs/benchmarks.md §12): Cleveland, Hungarian, Switzerland, V.A.
    const round = [
      { norm: 0.209, cosineToAggregate: 0.807, cosineToPrevious: null },
      { norm: 0.236, cosineToAggregate: 0.892, cosineToPrevious: null },
      { norm: 0.236, cosineToAggregate: -0.565, cosineToPrevious: null },
      { norm: 0.303, cosineToAggregate: 0.786, cosineToPrevious: null },
    ];
    // By hand: median (0.786 + 0.807)/2 = 0.7965; |deviations| 0.0105, 0.0955, 1.3615, 0.0105 → MAD (0.0105 +
    // 0.0955)/2 = 0.053; × 1.4826 × b₄ 1.363 = 0.10710. The three alike hospitals make the MAD small; the floor
    // 0.45 is the scale: Switzerland is (−0.565 − 0.7965)/0.45 = −3.0256 deviations, inside the threshold 3.5.
    const report = screenStatistics(round, { parameters: 14 });
    expect(report.summaries[1]).toMatchObject({ statistic: 'cosine-to-aggregate', scale: 0.45 });
    expect(report.summaries[1]!.median).toBeCloseTo(0.7965, 12);
    expect(report.summaries[1]!.scaledMad).toBeCloseTo(0.1071015414, 9);
    expect(report.flagged).toEqual([]);
    // The first floors (0.05, raised to 1/√14 = 0.26726) made it −1.3615 / 0.26726 = −5.0943 deviations: flagged.
    const before = screenStatistics(round, { ...FIRST_FLOORS, parameters: 14 });
    expect(before.flagged).toEqual([2]);
    expect(before.updates[2]!.flags[0]!.score).toBeCloseTo(-5.0942665321, 8);
  });

  it('defaults: a ×10 update among 4 is flagged on the norm, a ×3 one and a zero one are not (hand-computed)', () => {
    const round = (last: number) =>
      [1, 1.1, 0.9, last].map((norm) => ({ norm, cosineToAggregate: 0.9, cosineToPrevious: null }));
    // By hand, norms 1, 1.1, 0.9, 10: logs 0, 0.09531, −0.10536, 2.30259; median (0 + 0.09531)/2 = 0.047655
    // (reported as e^0.047655 = 1.04881); |deviations| 0.047655, 0.047655, 0.152015, 2.25493 → MAD 0.099835;
    // × 1.4826 × 1.363 = 0.20176, below the floor 0.35; the ×10 update: 2.25493 / 0.35 = 6.4427 deviations above.
    const scaled = screenStatistics(round(10));
    expect(scaled.summaries[0]!.median).toBeCloseTo(1.0488088482, 9);
    expect(scaled.summaries[0]!.scale).toBe(0.35);
    expect(scaled.flagged).toEqual([3]);
    expect(scaled.updates[3]!.flags[0]!.score).toBeCloseTo(6.4426571517, 8);
    // ×3: (ln 3 − 0.047655)/0.35 = 3.0027, inside the threshold; 0: a short update is never an outlier.
    expect(screenStatistics(round(3)).flagged).toEqual([]);
    expect(screenStatistics(round(0)).flagged).toEqual([]);
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
    expect(refusalCode(() => screenStatistics([], { parameters: 0 }))).toBe(AggregationErrorCode.InvalidParameter);
    expect(refusalCode(() => screenStatistics([], { parameters: 2.5 }))).toBe(AggregationErrorCode.InvalidParameter);
    expect(
      await asyncRefusalCode(() => screenUpdatesBlockwise(inMemoryBlockReader(updates), { aggregate: f32(1, 0, 0) })),
    ).toBe(AggregationErrorCode.LengthMismatch);
  });
});

/**
 * Honest non-IID rounds of a small model (m parameters, n silos): a shared direction μ plus, per silo, a skew of its
 * own data (0.6 of μ's norm, non-IID) and round noise (0.4), scaled by √(data size) with sizes spread ×4 between
 * silos (more data, more local steps, a longer update). The previous global update is μ plus noise. Silo 0 is the
 * attacker when one is asked for.
 */
function smallModelRound(seed: number, m: number, n: number, attack: 'none' | 'x10' | 'sign-flip' | 'gaussian') {
  const normal = seededNormal(seed);
  const uniform = seededNormal(seed + 1_000_000);
  const unit = (): Float64Array => {
    const v = Float64Array.from({ length: m }, normal);
    const length = Math.hypot(...v);
    return v.map((x) => x / length);
  };
  const mu = unit();
  const updates = Array.from({ length: n }, () => {
    const skew = unit();
    const noise = unit();
    const size = Math.exp(Math.log(4) * (0.5 + 0.5 * Math.tanh(uniform())));
    return Float32Array.from(mu, (x, i) => Math.sqrt(size) * (x + 0.6 * skew[i]! + 0.4 * noise[i]!));
  });
  const previousNoise = unit();
  const previousUpdate = Float32Array.from(mu, (x, i) => x + 0.3 * previousNoise[i]!);
  const own = updates[0]!;
  if (attack === 'x10') updates[0] = Float32Array.from(own, (x) => 10 * x);
  if (attack === 'sign-flip') updates[0] = Float32Array.from(own, (x) => -x);
  if (attack === 'gaussian') {
    const direction = unit();
    const length = Math.hypot(...own);
    updates[0] = Float32Array.from(direction, (x) => 10 * length * x);
  }
  return updateStatistics(updates, { aggregate: mean(updates), previousUpdate });
}

/** The rule as it was before the small-model calibration: linear norms, bare 1.4826 · MAD, floors 0.05 only. */
function uncalibratedFlags(
  statistics: readonly { norm: number; cosineToAggregate: number; cosineToPrevious: number | null }[],
): number[] {
  const median = (xs: readonly number[]): number => {
    const s = [...xs].sort((a, b) => a - b);
    const h = s.length >> 1;
    return s.length % 2 === 1 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
  };
  const flagged = new Set<number>();
  const check = (values: readonly number[], floor: number, twoSided: boolean): void => {
    const m = median(values);
    const scale = Math.max(1.4826 * median(values.map((v) => Math.abs(v - m))), floor);
    values.forEach((v, k) => {
      const score = (v - m) / scale;
      if (twoSided ? Math.abs(score) > 3.5 : score < -3.5) flagged.add(k);
    });
  };
  const norms = statistics.map((s) => s.norm);
  check(norms, 0.05 * median(norms), true);
  check(
    statistics.map((s) => s.cosineToAggregate),
    0.05,
    false,
  );
  const previous = statistics.map((s) => s.cosineToPrevious ?? 0);
  check(previous, 0.05, false);
  return [...flagged];
}

// The first calibration (log norms, b_n, the 1/√m floor) at its own floors of 0.05, on synthetic non-IID rounds whose
// silos differ alike; the defaults, set on the real hospitals' rounds, give up most sign flips among them (last test).
describe('update screening calibrated for small models (14 parameters, the heart-disease model)', () => {
  /** Over 200 seeded rounds: rounds with any honest update flagged, and rounds where silo 0 alone is flagged. */
  function rates(
    m: number,
    n: number,
    attack: 'none' | 'x10' | 'sign-flip' | 'gaussian',
    options: ScreeningOptions = FIRST_FLOORS,
  ) {
    let calibrated = 0;
    let uncalibrated = 0;
    for (let seed = 1; seed <= 200; seed += 1) {
      const statistics = smallModelRound(seed, m, n, attack);
      const now = screenStatistics(statistics, { ...options, parameters: m }).flagged;
      const before = uncalibratedFlags(statistics);
      const counts = (flagged: readonly number[]): boolean =>
        attack === 'none' ? flagged.length > 0 : flagged.length === 1 && flagged[0] === 0;
      if (counts(now)) calibrated += 1;
      if (counts(before)) uncalibrated += 1;
    }
    return { calibrated, uncalibrated };
  }

  it('flags no honest silo in 200 non-IID rounds of 4 or of 8 silos, where the uncalibrated rule flagged 29 and 39', () => {
    expect(rates(14, 4, 'none')).toEqual({ calibrated: 0, uncalibrated: 29 });
    expect(rates(14, 8, 'none')).toEqual({ calibrated: 0, uncalibrated: 39 });
  });

  it('still singles out a ×10, a sign-flipped and a Gaussian attacker among 8 silos in ≥ 97% of the rounds', () => {
    for (const attack of ['x10', 'sign-flip', 'gaussian'] as const) {
      const { calibrated, uncalibrated } = rates(14, 8, attack);
      expect(calibrated).toBeGreaterThanOrEqual(195);
      expect(calibrated).toBeGreaterThan(uncalibrated); // the old rule also flagged honest silos beside it
    }
  });

  it('among 4 silos: every sign flip, most ×10 and Gaussian attackers (one silo in four leaves the MAD weak)', () => {
    expect(rates(14, 4, 'sign-flip').calibrated).toBe(200);
    expect(rates(14, 4, 'x10').calibrated).toBeGreaterThanOrEqual(150);
    expect(rates(14, 4, 'gaussian').calibrated).toBeGreaterThanOrEqual(150);
  });

  it('at the defaults: no false flag, ×10 and Gaussian still found; sign flips among alike silos far less often', () => {
    // The price of the floors set on the real hospitals: a sign flip lies well inside the honest spread they allow
    // when silos are as alike as here (first floors: 200 of 200 among 4, ≥ 195 among 8). On the real heart-disease
    // rounds no floor found the sign flips (docs/benchmarks.md §12).
    const at = (n: number, attack: 'none' | 'x10' | 'sign-flip' | 'gaussian') => rates(14, n, attack, {}).calibrated;
    expect([at(4, 'none'), at(8, 'none')]).toEqual([0, 0]);
    expect([at(4, 'x10'), at(4, 'gaussian'), at(4, 'sign-flip')]).toEqual([155, 155, 58]);
    expect([at(8, 'x10'), at(8, 'gaussian'), at(8, 'sign-flip')]).toEqual([199, 199, 93]);
  });
});
