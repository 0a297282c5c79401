import { squaredNorm } from './update-validation';
import { accumulateScaled } from './weighted-mean-accumulator';
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
 * The geometry the distance-based aggregators (Krum, geometric median) and the screening need: pairwise squared
 * distances, and linear combinations Σ wₖ·uₖ / D. Both are sums over coordinates, so they accumulate block by block
 * in float64: one pass over the stored updates for the distances, one over the combined updates for the result.
 */

/**
 * Σₜ (x[t] − y[t])², accumulated in float64 with four partial sums over an eight-wide body, the n % 8 leftovers
 * first (the layout squaredNorm uses; see there for why).
 */
export function squaredDistance(x: Float32Array, y: Float32Array): number {
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  const n = x.length;
  const head = n % 8;
  let i = 0;
  for (; i < head; i += 1) {
    const e = x[i]! - y[i]!;
    a += e * e;
  }
  for (; i < n; i += 8) {
    const e0 = x[i]! - y[i]!;
    const e1 = x[i + 1]! - y[i + 1]!;
    const e2 = x[i + 2]! - y[i + 2]!;
    const e3 = x[i + 3]! - y[i + 3]!;
    const e4 = x[i + 4]! - y[i + 4]!;
    const e5 = x[i + 5]! - y[i + 5]!;
    const e6 = x[i + 6]! - y[i + 6]!;
    const e7 = x[i + 7]! - y[i + 7]!;
    a += e0 * e0 + e4 * e4;
    b += e1 * e1 + e5 * e5;
    c += e2 * e2 + e6 * e6;
    d += e3 * e3 + e7 * e7;
  }
  return a + b + (c + d);
}

/** Σₜ x[t]·y[t] in float64, same layout as squaredDistance. */
export function dotProduct(x: Float32Array, y: Float32Array): number {
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  const n = x.length;
  const head = n % 8;
  let i = 0;
  for (; i < head; i += 1) a += x[i]! * y[i]!;
  for (; i < n; i += 8) {
    a += x[i]! * y[i]! + x[i + 4]! * y[i + 4]!;
    b += x[i + 1]! * y[i + 1]! + x[i + 5]! * y[i + 5]!;
    c += x[i + 2]! * y[i + 2]! + x[i + 6]! * y[i + 6]!;
    d += x[i + 3]! * y[i + 3]! + x[i + 7]! * y[i + 7]!;
  }
  return a + b + (c + d);
}

/**
 * Kernel accumulating ‖uᵢ − uⱼ‖² for i < j block by block into `matrix` (n×n, row-major); `symmetrize` copies the
 * upper triangle to the lower one at the end. The diagonal stays 0. n(n − 1)/2 distance loops per block.
 */
function pairwiseDistanceKernel(matrix: Float64Array, count: number): BlockVisitor {
  return (blocks) => {
    for (let i = 0; i < count; i += 1) {
      for (let j = i + 1; j < count; j += 1) matrix[i * count + j]! += squaredDistance(blocks[i]!, blocks[j]!);
    }
  };
}

function symmetrize(matrix: Float64Array, count: number): Float64Array {
  for (let i = 0; i < count; i += 1) {
    for (let j = 0; j < i; j += 1) matrix[i * count + j] = matrix[j * count + i]!;
  }
  return matrix;
}

/**
 * All pairwise squared L2 distances ‖uᵢ − uⱼ‖² of in-memory updates, as an n×n row-major float64 matrix (8·n² bytes),
 * summed per block of DEFAULT_BLOCK_PARAMETERS coordinates exactly as the blockwise version does.
 */
export function pairwiseSquaredDistances(updates: readonly Float32Array[]): Float64Array {
  checkBatch(updates);
  const n = updates.length;
  const matrix = new Float64Array(n * n);
  forEachBlockInMemory(updates, DEFAULT_BLOCK_PARAMETERS, pairwiseDistanceKernel(matrix, n));
  return symmetrize(matrix, n);
}

/** pairwiseSquaredDistances through a reader: one pass over the stored updates, bit-identical at equal block size. */
export async function pairwiseSquaredDistancesBlockwise(
  reader: UpdateBlockReader,
  blockParameters: number = DEFAULT_BLOCK_PARAMETERS,
): Promise<Float64Array> {
  checkReader(reader);
  checkBlockParameters(blockParameters);
  const n = reader.count;
  const matrix = new Float64Array(n * n);
  await forEachBlock(reader, blockParameters, pairwiseDistanceKernel(matrix, n));
  return symmetrize(matrix, n);
}

/**
 * A linear combination of some of the updates: out = Σⱼ weights[j]·u_{indices[j]} / denominator, accumulated per
 * coordinate in float64 in index order and divided once (a correctly rounded quotient, as FedAvg does).
 */
export interface LinearCombination {
  readonly indices: readonly number[];
  readonly weights: readonly number[];
  readonly denominator: number;
}

function linearCombinationKernel(
  combination: LinearCombination,
  out: Float32Array,
  blockParameters: number,
): BlockVisitor {
  const sum = new Float64Array(Math.min(blockParameters, out.length));
  const { weights, denominator } = combination;
  return (blocks, start, end) => {
    const length = end - start;
    const acc = sum.subarray(0, length);
    acc.fill(0);
    blocks.forEach((block, j) => accumulateScaled(acc, block, weights[j]!));
    for (let t = 0; t < length; t += 1) out[start + t] = acc[t]! / denominator;
  };
}

/** The combination of in-memory updates (already checked). */
export function combineInMemory(updates: readonly Float32Array[], combination: LinearCombination): Float32Array {
  const out = new Float32Array(updates[0]!.length);
  const kernel = linearCombinationKernel(combination, out, DEFAULT_BLOCK_PARAMETERS);
  forEachBlockInMemory(updates, DEFAULT_BLOCK_PARAMETERS, kernel, combination.indices);
  return out;
}

/** The combination read through `reader`: one pass reading only the combined updates. */
export async function combineBlockwise(
  reader: UpdateBlockReader,
  combination: LinearCombination,
  blockParameters: number,
): Promise<Float32Array> {
  const out = new Float32Array(reader.length);
  await forEachBlock(
    reader,
    blockParameters,
    linearCombinationKernel(combination, out, blockParameters),
    combination.indices,
  );
  return out;
}

/** Kernel accumulating each update's squared L2 norm block by block. */
function squaredNormKernel(sums: Float64Array): BlockVisitor {
  return (blocks) => blocks.forEach((block, k) => (sums[k]! += squaredNorm(block)));
}

/** L2 norm of every in-memory update, summed per block like the blockwise version (bit-identical results). */
export function updateNorms(updates: readonly Float32Array[]): number[] {
  checkBatch(updates);
  const sums = new Float64Array(updates.length);
  forEachBlockInMemory(updates, DEFAULT_BLOCK_PARAMETERS, squaredNormKernel(sums));
  return Array.from(sums, Math.sqrt);
}

/** L2 norm of every update behind `reader`: one pass. */
export async function updateNormsBlockwise(
  reader: UpdateBlockReader,
  blockParameters: number = DEFAULT_BLOCK_PARAMETERS,
): Promise<number[]> {
  checkReader(reader);
  checkBlockParameters(blockParameters);
  const sums = new Float64Array(reader.count);
  await forEachBlock(reader, blockParameters, squaredNormKernel(sums));
  return Array.from(sums, Math.sqrt);
}
