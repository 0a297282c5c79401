// Every masked input the hub stores must be indistinguishable from uniform noise modulo 2^k, whatever the input.
// Test: Pearson's chi-square goodness of fit against the uniform distribution over 256 buckets, taken once on the
// top 8 bits and once on the bottom 8 bits of each value (a PRG flaw or a missing mask shows in one or the other).
//
// Threshold: under uniformity the statistic follows χ² with 255 degrees of freedom (mean 255, sd ≈ 22.6). We reject
// above its 1 − 10⁻⁶ quantile (≈ 377, Wilson–Hilferty approximation) and below its 10⁻⁶ quantile (≈ 162), so a
// correct implementation fails one bucketing with probability 2·10⁻⁶ for a random seed (16 bucketings: ≈ 3·10⁻⁵);
// the seeds here are fixed, so the run is reproducible. The
// positive control shows the test has power: the same statistic on the unmasked quantised inputs is far above it.

import { describe, expect, it } from 'vitest';

import { identityKeys, runRoundUntilUnmasking, siloIds, testConfig } from './secagg-round.test-util';

const BUCKETS = 256;

/** Pearson's χ² of the counts of `bucketOf(v)` against equal expected counts. */
function chiSquare(values: Uint32Array, bucketOf: (v: number) => number): number {
  const counts = new Float64Array(BUCKETS);
  for (const v of values) counts[bucketOf(v)]!++;
  const expected = values.length / BUCKETS;
  return counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0);
}

/** The upper quantile of χ²_df by the Wilson–Hilferty cube-root normal approximation (z the normal quantile). */
function chiSquareQuantile(df: number, z: number): number {
  const a = 2 / (9 * df);
  return df * (1 - a + z * Math.sqrt(a)) ** 3;
}

const Z_ONE_IN_A_MILLION = 4.753424; // Φ⁻¹(1 − 10⁻⁶)
const THRESHOLD = chiSquareQuantile(BUCKETS - 1, Z_ONE_IN_A_MILLION);
// The lower tail too: counts far too even (a counter or a ramp instead of noise) are as suspicious as uneven ones.
const LOWER = chiSquareQuantile(BUCKETS - 1, -Z_ONE_IN_A_MILLION);

/** Updates chosen to be as far from uniform as possible: zeros, a constant, a ramp, a single spike. */
function degenerateUpdates(ids: readonly string[], m: number): Map<string, Float32Array> {
  const shapes = [
    () => new Float32Array(m),
    () => new Float32Array(m).fill(0.5 / Math.sqrt(m)),
    () => Float32Array.from({ length: m }, (_, i) => i / m / Math.sqrt(m)),
    () => Float32Array.from({ length: m }, (_, i) => (i === 7 ? 0.9 : 0)),
  ];
  return new Map(ids.map((id, i) => [id, shapes[i % shapes.length]!()]));
}

describe('masked inputs are statistically indistinguishable from uniform', () => {
  it('the threshold is the χ²(255) quantile it claims to be (checked at the tabulated 95% point, 293.25)', () => {
    expect(chiSquareQuantile(255, 1.644854)).toBeCloseTo(293.25, 0);
    expect(THRESHOLD).toBeGreaterThan(370);
    expect(THRESHOLD).toBeLessThan(385);
  });

  for (const modulusBits of [32, 20]) {
    it(`at k = ${modulusBits}, for every stored input, top and bottom bytes (χ² below ${THRESHOLD.toFixed(0)})`, async () => {
      const ids = siloIds(4);
      const m = 2 ** 16;
      const config = testConfig({ participants: ids, vectorLength: m, modulusBits, scale: 2 ** (modulusBits - 6) });
      const run = await runRoundUntilUnmasking({
        config,
        keys: identityKeys(ids),
        updates: degenerateUpdates(ids, m),
        seed: `uniformity-${modulusBits}`,
      });
      const top = (v: number) => v >>> (modulusBits - 8);
      const bottom = (v: number) => v & 0xff;
      for (const id of ids) {
        const masked = run.masked.get(id)?.vector;
        const plain = run.quantised.get(id);
        if (masked === undefined || plain === undefined) throw new Error(`missing ${id}`);
        for (const bucket of [top, bottom]) {
          const statistic = chiSquare(masked, bucket);
          expect(statistic).toBeLessThan(THRESHOLD);
          expect(statistic).toBeGreaterThan(LOWER);
        }
        // Positive control: the unmasked input is rejected by a wide margin.
        expect(Math.max(chiSquare(plain, top), chiSquare(plain, bottom))).toBeGreaterThan(100 * THRESHOLD);
      }
    });
  }
});
