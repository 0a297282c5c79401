import { describe, expect, it } from 'vitest';

import { addGaussianNoiseInPlace, DEFAULT_GRANULARITY_BITS, gaussianNoise, noiseLattice } from './gaussian-noise';
import { PrivacyParameterError, PrivacyParameterErrorCode } from './privacy-parameter.exception';
import { CryptoRandomSource, SeededRandomSource } from './random-source';

// Fixed seeds make these deterministic; bounds are 5 standard errors (see discrete-gaussian.spec.ts).

describe('noiseLattice', () => {
  it('uses a power-of-two spacing with stddev / gamma in [2^24, 2^25), and an integer lattice sigma just above it', () => {
    for (const stddev of [1, 0.75, 3.3, 1e-3, 1234.5, 1.1]) {
      const lattice = noiseLattice(stddev);
      const ratio = stddev / lattice.granularity;
      expect(Number.isInteger(Math.log2(lattice.granularity))).toBe(true);
      expect(ratio).toBeGreaterThanOrEqual(2 ** DEFAULT_GRANULARITY_BITS);
      expect(ratio).toBeLessThan(2 ** (DEFAULT_GRANULARITY_BITS + 1));
      // Never less noise than asked for, at most 16 lattice units more (the sampler's blocks), i.e. 1 + 2^-20.
      expect(lattice.latticeSigma % 16).toBe(0);
      expect(lattice.latticeSigma).toBeGreaterThanOrEqual(ratio);
      expect(lattice.latticeSigma).toBeLessThan(ratio + 16);
      expect(lattice.effectiveStddev).toBe(lattice.latticeSigma * lattice.granularity);
      expect(lattice.effectiveStddev / stddev - 1).toBeLessThan(2 ** -20);
    }
    expect(noiseLattice(1)).toMatchObject({ granularity: 2 ** -24, latticeSigma: 2 ** 24, effectiveStddev: 1 });
    expect(noiseLattice(1.1, 8).latticeSigma).toBe(288); // 1.1 * 2^8 = 281.6, rounded up to a multiple of 16
  });

  it('rejects bad stddev and granularity', () => {
    expect(() => noiseLattice(0)).toThrow(PrivacyParameterError);
    expect(() => noiseLattice(-1)).toThrow(PrivacyParameterError);
    expect(() => noiseLattice(NaN)).toThrow(PrivacyParameterError);
    expect(() => noiseLattice(1, 3)).toThrow(PrivacyParameterError);
    expect(() => noiseLattice(1, 24.5)).toThrow(PrivacyParameterError);
    expect(() => noiseLattice(1, 31)).toThrow(PrivacyParameterError); // lattice sigma would pass the sampler's 2^31
  });
});

describe('gaussianNoise', () => {
  it('has mean 0, variance stddev^2 and the Gaussian two-sigma tail mass on 200k draws', () => {
    const stddev = 1.5;
    const n = 200_000;
    const noise = gaussianNoise(n, stddev, { rng: new SeededRandomSource('noise-moments') });
    expect(noise).toHaveLength(n);
    let sum = 0;
    let sumSquares = 0;
    let tail = 0;
    for (const x of noise) {
      sum += x;
      sumSquares += x * x;
      if (Math.abs(x) > 2 * stddev) tail++;
    }
    const mean = sum / n;
    const variance = sumSquares / n - mean * mean;
    expect(Math.abs(mean)).toBeLessThan((5 * stddev) / Math.sqrt(n));
    // Var of the sample variance of a Gaussian is 2 sigma^4 / n.
    expect(Math.abs(variance - stddev ** 2)).toBeLessThan(5 * stddev ** 2 * Math.sqrt(2 / n));
    const pTail = 0.04550026389635842; // P(|Z| > 2) = erfc(sqrt(2))
    expect(Math.abs(tail / n - pTail)).toBeLessThan(5 * Math.sqrt((pTail * (1 - pTail)) / n));
  });

  it('every draw is an exact multiple of the lattice spacing', () => {
    const { granularity } = noiseLattice(0.8);
    for (const x of gaussianNoise(2000, 0.8, { rng: new SeededRandomSource('lattice') })) {
      expect(Number.isInteger(x / granularity)).toBe(true);
    }
  });

  it('is reproducible with an injected seeded source and differs across seeds', () => {
    const a = gaussianNoise(50, 1, { rng: new SeededRandomSource('same') });
    const b = gaussianNoise(50, 1, { rng: new SeededRandomSource('same') });
    const c = gaussianNoise(50, 1, { rng: new SeededRandomSource('other') });
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  it('uses node:crypto by default and through CryptoRandomSource', () => {
    expect(gaussianNoise(10, 1)).toHaveLength(10);
    expect(gaussianNoise(10, 1, { rng: new CryptoRandomSource() }).some((x) => x !== 0)).toBe(true);
  });
});

describe('addGaussianNoiseInPlace', () => {
  it('adds noise of the right scale to a Float32Array and reports the trace', () => {
    const n = 100_000;
    const values = new Float32Array(n).fill(0.25);
    const trace = addGaussianNoiseInPlace(values, 0.5, { rng: new SeededRandomSource('in-place') });
    let sum = 0;
    let sumSquares = 0;
    for (const v of values) {
      sum += v - 0.25;
      sumSquares += (v - 0.25) ** 2;
    }
    expect(Math.abs(sum / n)).toBeLessThan((5 * 0.5) / Math.sqrt(n));
    expect(Math.abs(sumSquares / n - 0.25)).toBeLessThan(5 * 0.25 * Math.sqrt(2 / n));
    expect(trace).toEqual({
      mechanism: 'discrete-gaussian-lattice',
      stddev: 0.5,
      effectiveStddev: 0.5,
      granularity: 2 ** -25,
      granularityBits: 24,
      length: n,
      roundingSensitivity: 2 ** -25 * Math.sqrt(n),
    });
  });

  it('hides the input bits below the lattice: inputs equal after rounding give identical outputs', () => {
    // Mironov 2012: outputs must not reveal low-order bits. x and x + gamma/8 round to the same lattice point, so with
    // the same randomness the released values are bit-for-bit equal.
    const { granularity } = noiseLattice(1);
    const a = new Float64Array([0.1, -3.75, 12]);
    const b = a.map((x) => x + granularity / 8);
    addGaussianNoiseInPlace(a, 1, { rng: new SeededRandomSource('bits') });
    addGaussianNoiseInPlace(b, 1, { rng: new SeededRandomSource('bits') });
    expect(b).toEqual(a);
    for (const v of a) expect(Number.isInteger(v / granularity)).toBe(true);
  });

  it('refuses NaN and Infinity instead of passing them through', () => {
    for (const bad of [NaN, Infinity]) {
      try {
        addGaussianNoiseInPlace(new Float32Array([1, bad]), 1, { rng: new SeededRandomSource('nan') });
        expect.unreachable('should have thrown');
      } catch (error) {
        expect((error as PrivacyParameterError).code).toBe(PrivacyParameterErrorCode.NonFiniteValue);
      }
    }
  });
});
