import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { dealWithLabelSkew, dirichlet, gammaSample, greyPng, seededRandom, type DigitImage } from './demo-digits-data';

const digits: DigitImage[] = Array.from({ length: 2000 }, (_, i) => ({
  pixels: new Uint8Array(784),
  label: i % 10,
  name: `${i % 10}-${Math.floor(i / 10)}`,
}));

describe('the digits deal', () => {
  it('gives every digit to exactly one silo, the same way for the same seed', () => {
    const silos = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
    const deal = dealWithLabelSkew(digits, silos, 0.5, 17);
    const names = deal.flatMap((s) => s.images.map((d) => d.name));
    expect(names).toHaveLength(digits.length);
    expect(new Set(names).size).toBe(digits.length);
    expect(dealWithLabelSkew(digits, silos, 0.5, 17)).toEqual(deal);
    expect(dealWithLabelSkew(digits, silos, 0.5, 18)).not.toEqual(deal);
  });

  it('skews the labels at α = 0.5 far more than at α = 100 (near IID)', () => {
    const silos = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
    // Mean over silos of the largest class's share of the silo: 0.1 for a perfectly even deal.
    const skew = (alpha: number) => {
      const deal = dealWithLabelSkew(digits, silos, alpha, 3);
      const shares = deal.map((s) => {
        const counts = new Array<number>(10).fill(0);
        for (const d of s.images) counts[d.label]!++;
        return Math.max(...counts) / Math.max(1, s.images.length);
      });
      return shares.reduce((a, b) => a + b, 0) / shares.length;
    };
    expect(skew(0.5)).toBeGreaterThan(0.25);
    expect(skew(100)).toBeLessThan(0.15);
  });

  it('draws Gamma(α) with mean α and Dirichlet shares that sum to 1', () => {
    const random = seededRandom(5);
    for (const shape of [0.5, 2]) {
      const n = 20_000;
      let sum = 0;
      for (let i = 0; i < n; i++) sum += gammaSample(shape, random);
      // Standard error of the mean is sqrt(shape / n) ≈ 0.005–0.01: 5 of them.
      expect(Math.abs(sum / n - shape)).toBeLessThan(5 * Math.sqrt(shape / n));
    }
    const shares = dirichlet(0.5, 8, random);
    expect(shares.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(shares.every((p) => p >= 0)).toBe(true);
  });
});

describe('greyPng', () => {
  it('writes a PNG whose rows inflate back to the pixels, with valid chunk CRCs', () => {
    const pixels = Uint8Array.from({ length: 6 }, (_, i) => i * 40);
    const png = greyPng(pixels, 3, 2);
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    // IEND's CRC is the constant AE 42 60 82 of every PNG.
    expect(png.subarray(png.length - 4)).toEqual(Buffer.from([0xae, 0x42, 0x60, 0x82]));
    expect(png.readUInt32BE(16)).toBe(3); // IHDR width
    expect(png.readUInt32BE(20)).toBe(2); // IHDR height
    const idatLength = png.readUInt32BE(33);
    const rows = inflateSync(png.subarray(41, 41 + idatLength));
    expect(Array.from(rows)).toEqual([0, 0, 40, 80, 0, 120, 160, 200]);
  });
});
