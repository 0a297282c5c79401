import { SeededRandomSource } from '@tessera/dp';
import { describe, expect, it } from 'vitest';
import { exactSquareOf, noisyHistogramEvaluation } from './evaluation-release';

describe('exactSquareOf', () => {
  it('gives the exact square of a double as a rational', () => {
    expect(exactSquareOf(3)).toEqual({ numerator: 9n, denominator: 1n });
    expect(exactSquareOf(0.75)).toEqual({ numerator: 9n, denominator: 16n });
    // 0.1 is the double 3602879701896397 · 2^-55; its square, exactly.
    expect(exactSquareOf(0.1)).toEqual({ numerator: 3602879701896397n ** 2n, denominator: 1n << 110n });
    expect(() => exactSquareOf(0)).toThrow(/finite and > 0/);
    expect(() => exactSquareOf(Number.NaN)).toThrow(/finite and > 0/);
  });
});

describe('noisyHistogramEvaluation', () => {
  it('adds integer noise of the stated standard deviation to every count, independently', () => {
    const bins = 2000;
    const zeros = { negatives: new Array<number>(bins).fill(0), positives: new Array<number>(bins).fill(0) };
    const out = noisyHistogramEvaluation(zeros, 2.5, new SeededRandomSource('noisy-histogram-test'));
    expect(out.kind).toBe('noisy-histogram');
    expect(out.noiseStddev).toBe(2.5);
    const draws = [...out.negatives, ...out.positives];
    expect(draws.every(Number.isInteger)).toBe(true);
    const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
    const variance = draws.reduce((a, b) => a + (b - mean) ** 2, 0) / draws.length;
    // 4000 draws: the mean's standard error is 2.5/√4000 ≈ 0.04, the variance's about 6.25·√(2/4000) ≈ 0.14.
    expect(Math.abs(mean)).toBeLessThan(0.2);
    expect(Math.abs(variance - 6.25)).toBeLessThan(0.7);
    // Two halves of the stream are not the same noise.
    expect(out.negatives).not.toEqual(out.positives);
  });

  it('refuses histograms that are not counts', () => {
    const rng = new SeededRandomSource('x');
    expect(() => noisyHistogramEvaluation({ negatives: [1, 2], positives: [3] }, 1, rng)).toThrow(/same number/);
    expect(() => noisyHistogramEvaluation({ negatives: [1, 0.5], positives: [3, 4] }, 1, rng)).toThrow(/integers/);
  });
});
