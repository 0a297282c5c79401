import { AggregationErrorCode, AggregationException } from './aggregation.exception';
import { assertFiniteSquaredNorm, assertLength } from './update-validation';

/*
 * Blocks of coordinates: how the robust aggregators see n updates without holding them all. A pass walks the
 * coordinates in blocks [start, end) and, for each block, hands the kernel the n updates' values for that range.
 * In memory the blocks are subarrays (no copy); from a reader they are read, checked and dropped after the block,
 * so a pass needs n·(end − start) floats at a time instead of n·m.
 */

/**
 * Default coordinates per block: 65,536 (256 KiB of float32 per update per read). At n = 64 a block set is 16 MiB,
 * and a 10M-parameter model is 153 blocks per pass — few enough reads that per-read overhead of a blob store stays
 * small, small enough that n blocks fit comfortably beside the result.
 */
export const DEFAULT_BLOCK_PARAMETERS = 65_536;

/**
 * Random access to the coordinates of the round's n stored updates (deltas), e.g. ranged reads from the hub's blob
 * store. `readBlock(k, start, end)` resolves to update k's values at coordinates [start, end): exactly end − start
 * finite float32 values. The returned array must stay unchanged until the next `readBlock` call for the same update
 * (a reader may reuse one buffer per update); the aggregators never write into it. Reads of one block are issued
 * together (n concurrent calls), blocks strictly one after another.
 */
export interface UpdateBlockReader {
  /** n: number of updates. */
  readonly count: number;
  /** m: parameters per update. */
  readonly length: number;
  readBlock(update: number, start: number, end: number): Promise<Float32Array>;
}

/** Kernel of one pass: called once per block, in order, with the n (or selected) updates' values for [start, end). */
export type BlockVisitor = (blocks: readonly Float32Array[], start: number, end: number) => void;

/** Throws EmptyAggregate / LengthMismatch / NonFiniteValue unless `updates` is a non-empty batch of finite vectors of one length; returns m. */
export function checkBatch(updates: readonly Float32Array[]): number {
  if (updates.length === 0) {
    throw new AggregationException(AggregationErrorCode.EmptyAggregate, 'at least one update is required');
  }
  const m = updates[0]!.length;
  updates.forEach((u, k) => {
    assertLength(u, m, `update #${k}`);
    assertFiniteSquaredNorm(u, `update #${k}`);
  });
  return m;
}

/** Throws unless the reader announces at least one update of at least one parameter (integers). */
export function checkReader(reader: UpdateBlockReader): void {
  if (!Number.isInteger(reader.count) || reader.count < 1) {
    throw new AggregationException(
      AggregationErrorCode.EmptyAggregate,
      `the reader must hold at least one update, it reports ${String(reader.count)}`,
    );
  }
  if (!Number.isInteger(reader.length) || reader.length < 1) {
    throw new AggregationException(
      AggregationErrorCode.InvalidParameter,
      `the reader must report an integer length ≥ 1, got ${String(reader.length)}`,
    );
  }
}

/** Throws InvalidParameter unless `blockParameters` is an integer ≥ 1. */
export function checkBlockParameters(blockParameters: number): void {
  if (!Number.isInteger(blockParameters) || blockParameters < 1) {
    throw new AggregationException(
      AggregationErrorCode.InvalidParameter,
      `blockParameters must be an integer ≥ 1, got ${String(blockParameters)}`,
    );
  }
}

/** 0, 1, …, n − 1. */
export function allIndices(n: number): number[] {
  return Array.from({ length: n }, (_, k) => k);
}

/**
 * One pass over in-memory updates (already checked by checkBatch): subarrays of the `indices` updates, block by
 * block. Same block boundaries as forEachBlock, so a kernel that sums per block gives bit-identical results in both.
 */
export function forEachBlockInMemory(
  updates: readonly Float32Array[],
  blockParameters: number,
  visit: BlockVisitor,
  indices: readonly number[] = allIndices(updates.length),
): void {
  const m = updates[0]!.length;
  for (let start = 0; start < m; start += blockParameters) {
    const end = Math.min(m, start + blockParameters);
    visit(
      indices.map((k) => updates[k]!.subarray(start, end)),
      start,
      end,
    );
  }
}

/**
 * One pass over the `indices` updates of `reader`, block by block. Every block read is checked (length, finite
 * values) before the kernel sees it, so a faulty reader or a corrupted blob fails the round with a typed error.
 */
export async function forEachBlock(
  reader: UpdateBlockReader,
  blockParameters: number,
  visit: BlockVisitor,
  indices: readonly number[] = allIndices(reader.count),
): Promise<void> {
  const m = reader.length;
  for (let start = 0; start < m; start += blockParameters) {
    const end = Math.min(m, start + blockParameters);
    const blocks = await Promise.all(indices.map((k) => reader.readBlock(k, start, end)));
    blocks.forEach((block, j) => {
      const what = `update #${indices[j]} at coordinates [${start}, ${end})`;
      if (!(block instanceof Float32Array)) {
        throw new AggregationException(
          AggregationErrorCode.LengthMismatch,
          `the reader returned no Float32Array for ${what}`,
        );
      }
      assertLength(block, end - start, what);
      assertFiniteSquaredNorm(block, what);
    });
    visit(blocks, start, end);
  }
}

/**
 * A reader over updates already in memory (checked like the in-memory aggregators): lets callers and tests run a
 * blockwise aggregator on arrays, and the benchmark compare the two paths on the same data.
 */
export function inMemoryBlockReader(updates: readonly Float32Array[]): UpdateBlockReader {
  const m = checkBatch(updates);
  return {
    count: updates.length,
    length: m,
    readBlock: (update, start, end) => Promise.resolve(updates[update]!.subarray(start, end)),
  };
}
