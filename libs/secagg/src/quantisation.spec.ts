import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  assertNoWrap,
  coordinateBound,
  dequantiseSum,
  maxSafeScale,
  quantise,
  sumQuantisationErrorBound,
} from './quantisation';
import { addModulo } from './masked-sum';
import { SecAggErrorCode } from './secagg.exception';
import { refusalCode, seededRandom } from './secagg-round.test-util';

describe('the wrap-around checker', () => {
  it('refuses parameters where n clipped, quantised inputs could wrap modulo 2^k', () => {
    // 16 inputs × ⌈1 · 2^27⌉ = 2^31 > 2^31 − 1: one coordinate of the sum could reach the wrap point.
    expect(
      refusalCode(() => assertNoWrap({ participantCount: 16, clipNorm: 1, scale: 2 ** 27, modulusBits: 32 })),
    ).toBe(SecAggErrorCode.ModulusTooSmall);
    expect(refusalCode(() => assertNoWrap({ participantCount: 3, clipNorm: 10, scale: 1, modulusBits: 5 }))).toBe(
      SecAggErrorCode.ModulusTooSmall,
    );
  });

  it('accepts the largest safe scale and refuses the next representable one above it', () => {
    for (const [n, clip, bits] of [
      [16, 1, 32],
      [64, 3.5, 24],
      [4, 0.1, 16],
    ] as const) {
      const scale = maxSafeScale({ participantCount: n, clipNorm: clip, modulusBits: bits });
      expect(() => assertNoWrap({ participantCount: n, clipNorm: clip, scale, modulusBits: bits })).not.toThrow();
      expect(n * coordinateBound(clip, scale)).toBeLessThanOrEqual(2 ** (bits - 1) - 1);
      const bigger = scale * (1 + 1 / (2 ** (bits - 1) / n));
      expect(
        refusalCode(() => assertNoWrap({ participantCount: n, clipNorm: clip, scale: bigger, modulusBits: bits })),
      ).toBe(SecAggErrorCode.ModulusTooSmall);
    }
  });

  it('refuses invalid parameters with INVALID_PARAMETERS', () => {
    for (const bad of [
      { participantCount: 4, clipNorm: 0, scale: 1, modulusBits: 32 },
      { participantCount: 4, clipNorm: 1, scale: Number.NaN, modulusBits: 32 },
      { participantCount: 4, clipNorm: 1, scale: 1, modulusBits: 33 },
      { participantCount: 0, clipNorm: 1, scale: 1, modulusBits: 32 },
    ]) {
      expect(refusalCode(() => assertNoWrap(bad))).toBe(SecAggErrorCode.InvalidParameters);
    }
  });
});

describe('quantise and dequantise', () => {
  const p = { clipNorm: 2, scale: 1000, modulusBits: 20 };

  it('clips to the L2 norm and records what it applied', () => {
    const x = Float32Array.from([3, 4]); // norm 5 → factor 0.4 → (1.2, 1.6)
    const { vector, trace } = quantise(x, p, seededRandom('clip'));
    expect(trace.inputNorm).toBeCloseTo(5, 6);
    expect(trace.clipFactor).toBeCloseTo(0.4, 12);
    expect(trace.coordinateBound).toBe(2000);
    const back = dequantiseSum(vector, p);
    expect(back[0]).toBeCloseTo(1.2, 2);
    expect(back[1]).toBeCloseTo(1.6, 2);
  });

  it('encodes negatives in two’s complement modulo 2^k and decodes them back', () => {
    const { vector } = quantise(Float32Array.from([-0.5, 0.25]), p, seededRandom('neg'));
    expect(vector[0]).toBe(2 ** 20 - 500);
    expect(Array.from(dequantiseSum(vector, p))).toEqual([-0.5, 0.25]);
  });

  it('rounds stochastically without bias: the mean of many roundings of 0.3 steps is 0.3', () => {
    const x = new Float32Array(100_000).fill(0.3 / 1000);
    const { vector } = quantise(x, { ...p, clipNorm: 100 }, seededRandom('unbiased'));
    const ups = vector.reduce((sum, q) => sum + q, 0);
    // Binomial(100000, 0.3): sd ≈ 145; 6 sd either side.
    expect(ups).toBeGreaterThan(30_000 - 870);
    expect(ups).toBeLessThan(30_000 + 870);
    expect(vector.every((q) => q === 0 || q === 1)).toBe(true);
  });

  it('sums of quantised inputs dequantise to the clipped float sum within n/s (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.float({ min: -1, max: 1, noNaN: true }), { minLength: 1, maxLength: 64 }),
        fc.string(),
        (n, template, seed) => {
          const random = seededRandom(seed);
          const q = { clipNorm: 10, scale: 2 ** 16, modulusBits: 32 };
          const sum = new Uint32Array(template.length);
          const plain = new Float64Array(template.length);
          for (let j = 0; j < n; j++) {
            const x = Float32Array.from(template, (v) => v * (j + 1) * 0.1);
            addModulo(sum, quantise(x, q, random).vector, q.modulusBits);
            x.forEach((v, i) => (plain[i]! += v));
          }
          const back = dequantiseSum(sum, q);
          const bound = sumQuantisationErrorBound(n, q.scale);
          back.forEach((v, i) => expect(Math.abs(v - plain[i]!)).toBeLessThan(bound));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('refuses non-finite inputs and mismatched output buffers', () => {
    expect(refusalCode(() => quantise(Float32Array.from([1, Number.NaN]), p, seededRandom('x')))).toBe(
      SecAggErrorCode.VectorInvalid,
    );
    expect(refusalCode(() => quantise(Float32Array.from([1, 2]), p, seededRandom('x'), new Uint32Array(3)))).toBe(
      SecAggErrorCode.VectorInvalid,
    );
  });
});
