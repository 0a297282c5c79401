import { AggregationErrorCode, AggregationException } from './aggregation.exception';
import { ColumnSorter, SORT_TILE_PARAMETERS } from './column-sorter';
import {
  type BlockVisitor,
  checkBatch,
  checkBlockParameters,
  checkReader,
  DEFAULT_BLOCK_PARAMETERS,
  forEachBlock,
  forEachBlockInMemory,
  type UpdateBlockReader,
} from './update-blocks';

/*
 * Coordinate-wise robust aggregators. An order statistic of a coordinate needs every silo's value of that
 * coordinate, but only of that coordinate: the in-memory functions take all n updates (4·n·m bytes, 2.5 GB for
 * 64 × 10M), the blockwise ones read n blocks of coordinates at a time through an UpdateBlockReader
 * (4·n·blockParameters bytes) and give bit-identical results. Memory figures: aggregator-memory.ts.
 * Unweighted by design: the robustness argument is about the number of bad silos, not their example counts.
 */

/** Options of the blockwise aggregators. */
export interface BlockwiseOptions {
  /** Coordinates read per update per block; default DEFAULT_BLOCK_PARAMETERS (65,536). */
  readonly blockParameters?: number;
}

/** Writes the statistic of sorted tile rows (rows[k][t] = k-th smallest value of coordinate t) into out[offset + t]. */
type SortedColumnsReduction = (
  rows: readonly Float32Array[],
  length: number,
  out: Float32Array,
  offset: number,
) => void;

/** The shared kernel: sort each coordinate's n values tile by tile, reduce each sorted column into `out`. */
function columnStatisticKernel(count: number, out: Float32Array, reduce: SortedColumnsReduction): BlockVisitor {
  const sorter = new ColumnSorter(count);
  return (blocks, start, end) => {
    for (let offset = 0; offset < end - start; offset += SORT_TILE_PARAMETERS) {
      const length = Math.min(SORT_TILE_PARAMETERS, end - start - offset);
      sorter.sortTile(blocks, offset, length);
      reduce(sorter.rows, length, out, start + offset);
    }
  };
}

/** Median of each sorted column: the middle value, or for even n the mean of the two middle ones (in float64). */
const medianOfSorted: SortedColumnsReduction = (rows, length, out, offset) => {
  const h = rows.length >> 1;
  if (rows.length % 2 === 1) {
    out.set(rows[h]!.subarray(0, length), offset);
    return;
  }
  const lower = rows[h - 1]!;
  const upper = rows[h]!;
  for (let t = 0; t < length; t += 1) out[offset + t] = (lower[t]! + upper[t]!) / 2;
};

/** Mean of sorted rows trim … n − trim − 1, summed in float64 from the smallest up, divided once. */
function trimmedMeanOfSorted(trim: number): SortedColumnsReduction {
  const sum = new Float64Array(SORT_TILE_PARAMETERS);
  return (rows, length, out, offset) => {
    const kept = rows.length - 2 * trim;
    sum.fill(0, 0, length);
    for (let k = trim; k < rows.length - trim; k += 1) {
      const row = rows[k]!;
      for (let t = 0; t < length; t += 1) sum[t]! += row[t]!;
    }
    for (let t = 0; t < length; t += 1) out[offset + t] = sum[t]! / kept;
  };
}

export function checkTrimFraction(trimFraction: number): void {
  if (!(trimFraction >= 0 && trimFraction < 0.5)) {
    throw new AggregationException(
      AggregationErrorCode.InvalidParameter,
      `trimFraction must be in [0, 0.5), got ${String(trimFraction)}`,
    );
  }
}

/** Updates trimmed from EACH end of every coordinate: ⌊β·n⌋. */
export function trimmedCount(trimFraction: number, count: number): number {
  return Math.floor(trimFraction * count);
}

/**
 * Coordinate-wise median (Yin, Chen, Ramchandran, Bartlett 2018, "Byzantine-Robust Distributed Learning: Towards
 * Optimal Statistical Rates", §3 "median-based"): for even n, the mean of the two middle values. All n updates in
 * memory; see coordinateMedianBlockwise for bounded memory.
 */
export function coordinateMedian(updates: readonly Float32Array[]): Float32Array {
  const m = checkBatch(updates);
  const out = new Float32Array(m);
  forEachBlockInMemory(updates, DEFAULT_BLOCK_PARAMETERS, columnStatisticKernel(updates.length, out, medianOfSorted));
  return out;
}

/**
 * Coordinate-wise β-trimmed mean (Yin et al. 2018, §3 "trimmed mean"): per coordinate, drop the ⌊β·n⌋ largest and
 * ⌊β·n⌋ smallest values and average the rest. β ∈ [0, 0.5); β = 0 is the plain mean. All n updates in memory.
 */
export function trimmedMean(updates: readonly Float32Array[], trimFraction: number): Float32Array {
  checkTrimFraction(trimFraction);
  const m = checkBatch(updates);
  const out = new Float32Array(m);
  const reduce = trimmedMeanOfSorted(trimmedCount(trimFraction, updates.length));
  forEachBlockInMemory(updates, DEFAULT_BLOCK_PARAMETERS, columnStatisticKernel(updates.length, out, reduce));
  return out;
}

/** coordinateMedian over a reader, one block of coordinates at a time: one pass, bit-identical result. */
export async function coordinateMedianBlockwise(
  reader: UpdateBlockReader,
  options: BlockwiseOptions = {},
): Promise<Float32Array> {
  const blockParameters = options.blockParameters ?? DEFAULT_BLOCK_PARAMETERS;
  checkReader(reader);
  checkBlockParameters(blockParameters);
  const out = new Float32Array(reader.length);
  await forEachBlock(reader, blockParameters, columnStatisticKernel(reader.count, out, medianOfSorted));
  return out;
}

/** trimmedMean over a reader, one block of coordinates at a time: one pass, bit-identical result. */
export async function trimmedMeanBlockwise(
  reader: UpdateBlockReader,
  trimFraction: number,
  options: BlockwiseOptions = {},
): Promise<Float32Array> {
  const blockParameters = options.blockParameters ?? DEFAULT_BLOCK_PARAMETERS;
  checkTrimFraction(trimFraction);
  checkReader(reader);
  checkBlockParameters(blockParameters);
  const out = new Float32Array(reader.length);
  const reduce = trimmedMeanOfSorted(trimmedCount(trimFraction, reader.count));
  await forEachBlock(reader, blockParameters, columnStatisticKernel(reader.count, out, reduce));
  return out;
}
