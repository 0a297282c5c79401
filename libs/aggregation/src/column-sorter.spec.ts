import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ColumnSorter, oddEvenMergeComparators, SORT_TILE_PARAMETERS } from './column-sorter';

describe('odd–even merge sorting network (Batcher 1968)', () => {
  it('has the published comparator counts for powers of two', () => {
    // Knuth, TAOCP vol. 3 §5.3.4: Batcher's merge exchange sort uses 1, 5, 19, 63, 191, 543 comparators for
    // n = 2, 4, 8, 16, 32, 64 ((p² − p + 4)·2^(p−2) − 1 for n = 2^p).
    expect([2, 4, 8, 16, 32, 64].map((n) => oddEvenMergeComparators(n).length / 2)).toEqual([1, 5, 19, 63, 191, 543]);
  });

  it('sorts every 0/1 input for every n ≤ 14, so it sorts every input (the 0–1 principle)', () => {
    // Coordinate `mask` of update k holds bit k of mask: one pass of the real kernel sorts all 2^n inputs at once.
    for (let n = 1; n <= 14; n += 1) {
      const inputs = 1 << n;
      const blocks = Array.from({ length: n }, (_, k) =>
        Float32Array.from({ length: inputs }, (_, mask) => (mask >> k) & 1),
      );
      const sorter = new ColumnSorter(n);
      let unsorted = 0;
      for (let offset = 0; offset < inputs; offset += SORT_TILE_PARAMETERS) {
        const length = Math.min(SORT_TILE_PARAMETERS, inputs - offset);
        sorter.sortTile(blocks, offset, length);
        for (let t = 0; t < length; t += 1) {
          for (let k = 1; k < n; k += 1) if (sorter.rows[k - 1]![t]! > sorter.rows[k]![t]!) unsorted += 1;
        }
      }
      expect({ n, unsorted }).toEqual({ n, unsorted: 0 });
    }
  });

  it('only compares positions below n, lower index first', () => {
    for (const n of [3, 5, 17, 33, 63]) {
      const c = oddEvenMergeComparators(n);
      for (let i = 0; i < c.length; i += 2) {
        expect(c[i]).toBeLessThan(c[i + 1]!);
        expect(c[i + 1]).toBeLessThan(n);
      }
    }
  });
});

describe('ColumnSorter', () => {
  it('sorts each coordinate of a tile like Array.prototype.sort, for floats of every sign and size (property)', () => {
    const float = fc.float({ noNaN: true, noDefaultInfinity: true });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 70 }),
        fc.integer({ min: 1, max: 40 }),
        fc.array(float, { minLength: 70 * 40, maxLength: 70 * 40 }),
        (n, length, pool) => {
          const blocks = Array.from({ length: n }, (_, k) =>
            Float32Array.from(pool.slice(k * length, (k + 1) * length)),
          );
          const sorter = new ColumnSorter(n);
          sorter.sortTile(blocks, 0, length);
          for (let t = 0; t < length; t += 1) {
            const expected = blocks.map((b) => b[t]!).sort((a, b) => a - b);
            const actual = sorter.rows.map((r) => r[t]!);
            // Equal as numbers (−0 and +0 compare equal and may come in either order among themselves).
            expect(actual.map((x) => x + 0)).toEqual(expected.map((x) => x + 0));
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('handles the float32 extremes, subnormals and −0 without changing any value', () => {
    const extremes = [
      3.4028234663852886e38, -3.4028234663852886e38, 1.401298464324817e-45, -1.401298464324817e-45, -0, 0, 1, -1,
    ];
    const blocks = extremes.map((x) => Float32Array.of(x));
    const sorter = new ColumnSorter(blocks.length);
    sorter.sortTile(blocks, 0, 1);
    expect(sorter.rows.map((r) => r[0])).toEqual([
      -3.4028234663852886e38, -1, -1.401298464324817e-45, -0, 0, 1.401298464324817e-45, 1, 3.4028234663852886e38,
    ]);
    expect(Object.is(sorter.rows[3]![0], -0)).toBe(true);
  });

  it('reads tiles at an offset and never writes into its inputs', () => {
    const blocks = [Float32Array.of(9, 3, 7), Float32Array.of(1, 8, 2)];
    const copies = blocks.map((b) => b.slice());
    const sorter = new ColumnSorter(2);
    sorter.sortTile(blocks, 1, 2);
    expect(Array.from(sorter.rows[0]!.subarray(0, 2))).toEqual([3, 2]);
    expect(Array.from(sorter.rows[1]!.subarray(0, 2))).toEqual([8, 7]);
    expect(blocks).toEqual(copies);
    expect(sorter.rows[0]!.length).toBe(SORT_TILE_PARAMETERS);
  });
});
