import { AggregationErrorCode, AggregationException } from './aggregation.exception';
import { FusedSum, type SumKernelChoice } from './fused-sum';
import { assertFiniteSquaredNorm, assertLength, assertWeight } from './update-validation';

export { accumulateScaled } from './fused-sum';

/** 'weighted': each update counts by its weight (examples); 'unweighted': every accepted update counts 1. */
export type MeanWeighting = 'weighted' | 'unweighted';

export interface WeightedMeanAccumulatorOptions {
  /** Default 'weighted'. */
  readonly weighting?: MeanWeighting;
  /**
   * Default 'auto': the WebAssembly SIMD kernel where the engine has it, else the scalar loop. 'scalar' forces the
   * JavaScript loop. Both give bit-identical sums (fused-sum.ts); the choice is speed only.
   */
  readonly kernel?: SumKernelChoice;
  /**
   * Default 1. 2: a worker thread sums the upper half of the coordinates of updates held in SharedArrayBuffers
   * (bit-identical; other updates are summed on the calling thread). Call `close()` when done with it.
   */
  readonly threads?: 1 | 2;
  /**
   * Default 0. Buffers of m float32 reserved inside the kernel's memory (`inputBuffer(j)`): an update written there
   * (e.g. read from its blob straight into it) is summed without first being copied into the kernel's memory.
   */
  readonly inputBuffers?: number;
}

/**
 * Streaming (weighted) mean of float32 vectors: O(m) memory whatever the number of updates, one update — or a few
 * held at once — at a time.
 *
 * Accumulator precision — decided by measurement (bench/aggregation/accumulator-choice.mjs, 2-core AMD EPYC,
 * Node 20, m = 10M, n = 16): a Float64Array sum took ~10–20 ms per add with max error 3.0e-8 on the float32 mean;
 * Float32 + Kahan compensation took ~37 ms per add with max error 8.4e-8. Both keep 8 bytes of state per
 * parameter and move the same bytes, but Kahan needs four dependent float32 roundings per element, so float64
 * is both faster and more accurate. Memory: 8·m bytes (80 MB for a 10M-parameter model) plus the 4·m-byte result.
 *
 * Speed (fused-sum.ts, docs/benchmarks.md §1): the sum is computed by a WebAssembly SIMD kernel, and `addMany` /
 * `addValidatedMany` fuse up to eight updates per pass over the sum, so the float64 state is read and written once
 * per eight updates. Every path computes, per coordinate, s ← s + w·u in float64 in the order the updates were
 * given: `add` one by one, `addMany` in one call, SIMD or scalar, one thread or two give the same bits.
 *
 * Refusals (length, weight, non-finite values) throw AggregationException before any state is touched.
 */
export class WeightedMeanAccumulator {
  readonly weighting: MeanWeighting;
  private readonly sum: FusedSum;
  private accepted = 0;
  private weightSum = 0;

  constructor(
    readonly length: number,
    options: WeightedMeanAccumulatorOptions = {},
  ) {
    if (!Number.isInteger(length) || length < 1) {
      throw new AggregationException(AggregationErrorCode.InvalidParameter, `length must be an integer ≥ 1`);
    }
    this.weighting = options.weighting ?? 'weighted';
    if (this.weighting !== 'weighted' && this.weighting !== 'unweighted') {
      throw new AggregationException(
        AggregationErrorCode.InvalidParameter,
        `unknown weighting ${String(this.weighting)}`,
      );
    }
    this.sum = new FusedSum(length, {
      ...(options.kernel ? { kernel: options.kernel } : {}),
      ...(options.threads ? { threads: options.threads } : {}),
      ...(options.inputBuffers !== undefined ? { inputBuffers: options.inputBuffers } : {}),
    });
  }

  /** Number of updates accepted so far. */
  get count(): number {
    return this.accepted;
  }

  /** Sum of the weights used (equals `count` when unweighted). */
  get totalWeight(): number {
    return this.weightSum;
  }

  /**
   * What computes the sum: 'simd' (WebAssembly SIMD) or 'scalar' (JavaScript), on how many threads, and how many
   * additions so far were shared with the second thread.
   */
  get kernel(): { readonly kernel: 'simd' | 'scalar'; readonly threads: 1 | 2; readonly passesOnTwoCores: number } {
    return { kernel: this.sum.kernel, threads: this.sum.threads, passesOnTwoCores: this.sum.passesOnTwoCores };
  }

  /** Input buffer j (options.inputBuffers): fill it with an update, then add it like any other array. */
  inputBuffer(j: number): Float32Array {
    return this.sum.input(j);
  }

  /**
   * Adds `weight · update` to the running sum. `weight` is validated (finite, > 0) in both modes, then ignored
   * (treated as 1) when unweighted. Validation is a read-only pass before the write pass, so a refused update
   * leaves the accumulator exactly as it was. No allocation.
   */
  add(update: Float32Array, weight = 1): void {
    this.addMany([update], [weight]);
  }

  /**
   * Fast path for updates the caller has ALREADY validated (every value finite, e.g. the hub's upload receiver checks
   * finiteness and the norm while streaming each update in): one pass over the update instead of two. Length and
   * weight are still checked (O(1)). Arithmetic is identical to `add`, so for valid input the result is bit-for-bit
   * the same. What it gives up: a NaN or ±Infinity slipped in here poisons the sum instead of being refused —
   * callers that have not validated the update must use `add`. Measured on the benchmark machine (m = 10M): the
   * read-only finiteness pass is ~40% of `add`'s time (bench/aggregation, docs/benchmarks.md).
   */
  addValidated(update: Float32Array, weight = 1): void {
    this.addValidatedMany([update], [weight]);
  }

  /**
   * `add` for several updates at once, fused: the sum is read and written once per eight updates instead of once
   * per update. Same bits as adding them one by one in this order. All are checked before any is added: one refused
   * update leaves the accumulator unchanged. `weights[j]` belongs to `updates[j]`.
   */
  addMany(updates: readonly Float32Array[], weights: readonly number[]): void {
    this.checkBatch(updates, weights);
    updates.forEach((u, j) => assertFiniteSquaredNorm(u, updates.length === 1 ? 'update' : `update #${j}`));
    this.accumulate(updates, weights);
  }

  /** `addValidated` for several updates at once, fused (see addMany); finiteness is the caller's promise. */
  addValidatedMany(updates: readonly Float32Array[], weights: readonly number[]): void {
    this.checkBatch(updates, weights);
    this.accumulate(updates, weights);
  }

  /**
   * `addValidatedMany(updates, weights)` then `result(out)`, in one sweep when `out` is an input buffer: chunk by chunk,
   * every update then the division while the chunk's float64 sums are still in the cache — the sum never travels to
   * memory and back. The same bits, count and total weight as the two calls. Typical use: a round whose n updates are
   * read (or block-read) into input buffers, then one call.
   */
  addValidatedManyAndResult(
    updates: readonly Float32Array[],
    weights: readonly number[],
    out: Float32Array = new Float32Array(this.length),
  ): Float32Array {
    this.checkBatch(updates, weights);
    if (this.accepted + updates.length === 0) {
      throw new AggregationException(AggregationErrorCode.EmptyAggregate, 'no update has been accepted yet');
    }
    assertLength(out, this.length, 'output buffer');
    const used = this.weighting === 'weighted' ? weights : weights.map(() => 1);
    let total = this.weightSum;
    for (const w of used) total += w;
    this.sum.addAndDivide(updates, used, total, out);
    this.accepted += updates.length;
    this.weightSum = total;
    return out;
  }

  private checkBatch(updates: readonly Float32Array[], weights: readonly number[]): void {
    if (!isList(updates) || !isList(weights) || updates.length !== weights.length) {
      throw new AggregationException(
        AggregationErrorCode.InvalidParameter,
        `updates and weights must be arrays of one length, got ${String(updates?.length)} and ${String(weights?.length)}`,
      );
    }
    updates.forEach((u, j) => assertLength(u, this.length, updates.length === 1 ? 'update' : `update #${j}`));
    weights.forEach((w) => assertWeight(w));
  }

  private accumulate(updates: readonly Float32Array[], weights: readonly number[]): void {
    if (updates.length === 0) return;
    const used = this.weighting === 'weighted' ? weights : weights.map(() => 1);
    this.sum.add(updates, used);
    this.accepted += updates.length;
    for (const w of used) this.weightSum += w;
  }

  /**
   * The mean Σ wᵢ·uᵢ / Σ wᵢ rounded once to float32. Does not consume the state: more adds may follow.
   * `out` (length m) receives the result instead of a fresh array: on the benchmark VM the page faults of a fresh
   * 40 MB array cost more than the division itself, so a hub that keeps a buffer across rounds should pass it.
   */
  result(out?: Float32Array): Float32Array {
    return this.quotient(this.weightSum, out);
  }

  /**
   * Σ wᵢ·uᵢ / `denominator`, rounded once to float32: the weighted sum scaled by a caller-chosen constant
   * (DP-FedAvg divides by a fixed, public denominator rather than by the data-dependent total weight).
   * True division, not multiplication by 1/denominator, so each value is the correctly rounded quotient.
   */
  quotient(denominator: number, out: Float32Array = new Float32Array(this.length)): Float32Array {
    if (this.accepted === 0) {
      throw new AggregationException(AggregationErrorCode.EmptyAggregate, 'no update has been accepted yet');
    }
    if (!(denominator > 0 && Number.isFinite(denominator))) {
      throw new AggregationException(AggregationErrorCode.InvalidParameter, `denominator must be finite and > 0`);
    }
    assertLength(out, this.length, 'output buffer');
    this.sum.quotient(denominator, out);
    return out;
  }

  /**
   * A copy of the float64 sum Σ wᵢ·uᵢ, unrounded and undivided: DP-FedAvg adds its noise to the sum itself, on a
   * lattice, before any rounding to float32 (@tessera/dp latticeNoise). Throws EmptyAggregate when nothing was added.
   */
  sumCopy(): Float64Array {
    if (this.accepted === 0) {
      throw new AggregationException(AggregationErrorCode.EmptyAggregate, 'no update has been accepted yet');
    }
    return this.sum.values.slice();
  }

  /** Forgets every update (zeroes the sum in place; keeps the allocation). */
  reset(): void {
    this.sum.reset();
    this.accepted = 0;
    this.weightSum = 0;
  }

  /** Stops the two-core path's worker thread (no-op otherwise). The accumulator must not be used afterwards. */
  close(): Promise<void> {
    return this.sum.close();
  }
}

/**
 * Array.isArray for a parameter typed as a readonly array: the built-in narrows `readonly T[]` to `any[]`, so the
 * checked value would lose its element type; this keeps it (callers from JavaScript may still pass anything).
 */
function isList<T>(value: readonly T[]): value is readonly T[] {
  return Array.isArray(value);
}
