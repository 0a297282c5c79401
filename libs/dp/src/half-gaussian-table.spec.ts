import { describe, expect, it } from 'vitest';

import { expectChiSquareFit, histogram } from './distribution.test-util';
import { halfGaussianTable, HalfGaussianTable } from './half-gaussian-table';
import { type RandomSource, SeededRandomSource } from './random-source';

/** P(k) proportional to exp(-k^2 / (2 m^2)) on k >= from, in doubles (ample for a statistical comparison). */
function halfGaussianPmf(m: number, from = 0): (k: number) => number {
  let total = 0;
  for (let k = from; k < from + 40 * m; k++) total += Math.exp(-(k * k) / (2 * m * m));
  return (k) => (k >= from ? Math.exp(-(k * k) / (2 * m * m)) / total : 0);
}

/** A word stream that first replays `words`, then continues with a seeded stream. */
function scriptedWords(words: readonly number[], seed: string): { word: () => number; rng: RandomSource } {
  const rest = new SeededRandomSource(seed);
  let i = 0;
  const word = (): number => (i < words.length ? words[i++]! : rest.nextUint32());
  return { word, rng: { nextUint32: word } };
}

/** U (given by its revealed 32-bit words) < C_k, decided from rigorous bounds; undefined if the bounds cannot tell. */
function exactlyBelow(words: readonly number[], table: HalfGaussianTable, k: number): boolean | undefined {
  const { precision, lo, hi } = table.cumulativeBounds();
  let revealed = 0n;
  for (const w of words) revealed = (revealed << 32n) | BigInt(w);
  const shift = BigInt(precision - 32 * words.length);
  if ((revealed + 1n) << shift <= lo[k]!) return true;
  if (revealed << shift >= hi[k]!) return false;
  return undefined;
}

describe('HalfGaussianTable: exact P(k) proportional to exp(-k^2 / (2 m^2))', () => {
  it.each([1, 4, 16])('m = %d: rigorous, tight, increasing bounds that agree with a double computation', (m) => {
    const table = new HalfGaussianTable(m);
    const { precision, lo, hi } = table.cumulativeBounds();
    expect(precision).toBeGreaterThanOrEqual(192);
    expect(lo).toHaveLength(10 * m + 1);
    const pmf = halfGaussianPmf(m);
    let cumulative = 0;
    for (let k = 0; k < lo.length; k++) {
      expect(lo[k]! <= hi[k]!).toBe(true);
      expect(hi[k]! - lo[k]! < 1n << BigInt(precision - 150)).toBe(true); // width below 2^-150
      if (k > 0) expect(lo[k]! > hi[k - 1]!).toBe(true);
      cumulative += pmf(k);
      expect(Math.abs(Number(lo[k]!) / 2 ** precision - cumulative)).toBeLessThan(1e-14);
    }
    expect(hi[lo.length - 1]! < 1n << BigInt(precision)).toBe(true);
  });

  it.each([1, 4, 16])('m = %d: draws match the pmf (chi-square, 200k draws)', (m) => {
    const table = halfGaussianTable(m);
    const rng = new SeededRandomSource(`half-gaussian-${m}`);
    const word = (): number => rng.nextUint32();
    const n = 200_000;
    const counts = histogram(n, () => table.sample(word(), word, rng));
    expectChiSquareFit(counts, halfGaussianPmf(m), n, Math.max(1, Math.ceil(m / 4)));
  });

  it('resolves a first word inside a threshold window exactly, with more words', () => {
    const table = new HalfGaussianTable(4);
    const { precision, lo } = table.cumulativeBounds();
    for (let k = 0; k < 12; k++) {
      // The first 32 bits of C_k's lower bound: certain neither below nor above C_k from one word.
      const first = Number(lo[k]! >> BigInt(precision - 32));
      for (let trial = 0; trial < 20; trial++) {
        const words = [first];
        const { word, rng } = scriptedWords([], `window-${k}-${trial}`);
        const replay: number[] = [];
        const recording = (): number => {
          const w = word();
          replay.push(w);
          return w;
        };
        const result = table.sample(first, recording, rng);
        words.push(...replay);
        // The answer is the first threshold the revealed deviate is certainly below.
        expect(exactlyBelow(words, table, result)).toBe(true);
        if (result > 0) expect(exactlyBelow(words, table, result - 1)).toBe(false);
      }
    }
  });

  it('recomputes with more precision when a deviate agrees with a threshold beyond the stored bits', () => {
    const table = new HalfGaussianTable(2);
    const before = table.cumulativeBounds();
    const k = 3;
    // U's first 192 bits equal the lower bound of C_3: undecidable at 192 bits by construction.
    const words: number[] = [];
    for (let i = 1; i <= before.precision / 32; i++) {
      words.push(Number((before.lo[k]! >> BigInt(before.precision - 32 * i)) & 0xffffffffn));
    }
    const { word, rng } = scriptedWords(words.slice(1), 'beyond-precision');
    const consumed: number[] = [words[0]!];
    const result = table.sample(
      words[0]!,
      () => {
        const w = word();
        consumed.push(w);
        return w;
      },
      rng,
    );
    const after = table.cumulativeBounds();
    expect(after.precision).toBe(2 * before.precision);
    expect(consumed.length).toBeGreaterThan(before.precision / 32);
    expect([k, k + 1]).toContain(result);
    expect(exactlyBelow(consumed, table, result)).toBe(true);
    if (result > 0) expect(exactlyBelow(consumed, table, result - 1)).toBe(false);
  });

  it('draws beyond the table from the exact tail distribution', () => {
    const m = 4;
    const table = new HalfGaussianTable(m);
    const rng = new SeededRandomSource('tail');
    const n = 20_000;
    const first = table.size;
    const counts = histogram(n, () => table.sampleTail(rng) - first);
    expect(Math.min(...counts.keys())).toBe(0);
    const tail = halfGaussianPmf(m, first);
    expectChiSquareFit(counts, (g) => tail(g + first), n);
  });

  it('refuses m outside [1, 64]', () => {
    expect(() => new HalfGaussianTable(0)).toThrow(RangeError);
    expect(() => new HalfGaussianTable(65)).toThrow(RangeError);
    expect(() => new HalfGaussianTable(1.5)).toThrow(RangeError);
  });
});
