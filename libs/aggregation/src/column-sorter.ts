/*
 * Sorting n values per coordinate, for thousands of coordinates at once: the kernel of the coordinate-wise median
 * and trimmed mean. A per-coordinate sort (TypedArray sort, insertion sort, quickselect) branches on every
 * comparison of random data and mispredicts about half of them; on the 2-core benchmark machine that cost
 * 1.8–3.2 µs per coordinate at n = 32 (quickselect … TypedArray.prototype.sort). Here a fixed comparator network
 * is applied to whole rows of a tile (row k = update k's values for the tile's coordinates), and each comparator is a
 * branch-free min/max on sortable integer keys over contiguous memory: 0.35–0.7 µs per coordinate at n = 32 in the
 * same scratch measurement.
 */

/**
 * Comparators of Batcher's odd–even merge sort (Batcher 1968, "Sorting networks and their applications") for the
 * next power of two ≥ n, keeping only those whose both inputs are < n. Dropping the others is exact: it is the
 * network run on inputs padded with +∞ at the end, where a comparator touching a padded position never moves a
 * real value. Flat pairs [a0, b0, a1, b1, …] with a < b; O(n log² n) comparators (191 for n = 32, 543 for 64).
 */
export function oddEvenMergeComparators(n: number): Int32Array {
  let size = 1;
  while (size < n) size <<= 1;
  const pairs: number[] = [];
  for (let p = 1; p < size; p <<= 1) {
    for (let k = p; k >= 1; k >>= 1) {
      for (let j = k % p; j <= size - 1 - k; j += 2 * k) {
        for (let i = 0; i <= Math.min(k - 1, size - j - k - 1); i += 1) {
          const a = i + j;
          const b = i + j + k;
          if (Math.floor(a / (2 * p)) === Math.floor(b / (2 * p)) && b < n) pairs.push(a, b);
        }
      }
    }
  }
  return Int32Array.from(pairs);
}

/**
 * Maps float32 bit patterns (seen as int32) to integers with the same order, in place, and back: it is its own
 * inverse. Non-negative floats keep their bits; negative ones flip every bit but the sign. −0 sorts just below +0.
 * Only for finite values (the callers have checked).
 */
function flipSortableKeys(keys: Int32Array, length: number): void {
  for (let t = 0; t < length; t += 1) {
    const v = keys[t]!;
    keys[t] = v ^ ((v >> 31) & 0x7fffffff);
  }
}

/** One comparator over a tile: x[t], y[t] ← min, max. Branch-free: the mask is all ones when y[t] < x[t]. */
function compareExchange(x: Int32Array, y: Int32Array, length: number): void {
  for (let t = 0; t < length; t += 1) {
    const a = x[t]!;
    const b = y[t]!;
    const swap = (a ^ b) & (-+(b < a) | 0);
    x[t] = a ^ swap;
    y[t] = b ^ swap;
  }
}

/** Coordinates per tile: n rows of 4096 float32 (16 KiB each) stay in a core's L2 cache while the network runs. */
export const SORT_TILE_PARAMETERS = 4096;

/**
 * Sorts, for each coordinate of a tile, the n updates' values: after `sortTile`, `rows[k][t]` is the k-th smallest
 * value of coordinate t. Owns n·SORT_TILE_PARAMETERS float32 of scratch (the inputs are copied, never written).
 */
export class ColumnSorter {
  /** Row k of the sorted tile (float32 view). */
  readonly rows: readonly Float32Array[];
  private readonly keys: readonly Int32Array[];
  private readonly comparators: Int32Array;

  constructor(readonly count: number) {
    const rows = Array.from({ length: count }, () => new Float32Array(SORT_TILE_PARAMETERS));
    this.rows = rows;
    this.keys = rows.map((r) => new Int32Array(r.buffer));
    this.comparators = oddEvenMergeComparators(count);
  }

  /** Copies blocks[k][offset, offset + length) into row k (length ≤ SORT_TILE_PARAMETERS) and sorts every column. */
  sortTile(blocks: readonly Float32Array[], offset: number, length: number): void {
    const { count, rows, keys, comparators } = this;
    for (let k = 0; k < count; k += 1) {
      rows[k]!.set(blocks[k]!.subarray(offset, offset + length));
      flipSortableKeys(keys[k]!, length);
    }
    for (let c = 0; c < comparators.length; c += 2) {
      compareExchange(keys[comparators[c]!]!, keys[comparators[c + 1]!]!, length);
    }
    for (let k = 0; k < count; k += 1) flipSortableKeys(keys[k]!, length);
  }
}
