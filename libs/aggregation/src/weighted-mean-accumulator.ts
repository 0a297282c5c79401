import { AggregationErrorCode, AggregationException } from './aggregation.exception';
import { assertFiniteSquaredNorm, assertLength, assertWeight } from './update-validation';

/** 'weighted': each update counts by its weight (examples); 'unweighted': every accepted update counts 1. */
export type MeanWeighting = 'weighted' | 'unweighted';

export interface WeightedMeanAccumulatorOptions {
  /** Default 'weighted'. */
  readonly weighting?: MeanWeighting;
}

/**
 * Streaming (weighted) mean of float32 vectors: O(m) memory whatever the number of updates, one update at a time.
 *
 * Accumulator precision — decided by measurement (bench/aggregation/accumulator-choice.mjs, 2-core AMD EPYC,
 * Node 20, m = 10M, n = 16): a Float64Array sum took ~10–20 ms per add with max error 3.0e-8 on the float32 mean;
 * Float32 + Kahan compensation took ~37 ms per add with max error 8.4e-8. Both keep 8 bytes of state per
 * parameter and move the same bytes, but Kahan needs four dependent float32 roundings per element, so float64
 * is both faster and more accurate. Memory: 8·m bytes (80 MB for a 10M-parameter model) plus the 4·m-byte result.
 *
 * Refusals (length, weight, non-finite values) throw AggregationException before any state is touched.
 */
export class WeightedMeanAccumulator {
  readonly weighting: MeanWeighting;
  private readonly sum: Float64Array;
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
    this.sum = new Float64Array(length);
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
   * Adds `weight · update` to the running sum. `weight` is validated (finite, > 0) in both modes, then ignored
   * (treated as 1) when unweighted. Validation is a read-only pass before the write pass, so a refused update
   * leaves the accumulator exactly as it was. No allocation.
   */
  add(update: Float32Array, weight = 1): void {
    assertLength(update, this.length, 'update');
    assertWeight(weight);
    assertFiniteSquaredNorm(update, 'update');
    const w = this.weighting === 'weighted' ? weight : 1;
    accumulateScaled(this.sum, update, w);
    this.accepted += 1;
    this.weightSum += w;
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
    assertLength(update, this.length, 'update');
    assertWeight(weight);
    const w = this.weighting === 'weighted' ? weight : 1;
    accumulateScaled(this.sum, update, w);
    this.accepted += 1;
    this.weightSum += w;
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
    const s = this.sum;
    const n = out.length;
    for (let i = 0; i < n; i += 1) out[i] = s[i] / denominator;
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
    return this.sum.slice();
  }

  /** Forgets every update (zeroes the sum in place; keeps the allocation). */
  reset(): void {
    this.sum.fill(0);
    this.accepted = 0;
    this.weightSum = 0;
  }
}

/**
 * acc[i] += w · u[i]. The hot loop of aggregation (reads 4 + 8 bytes and writes 8 per parameter). Unrolled by
 * eight: at m = 1M on the 2-core benchmark machine a plain loop measured 1.6–4.7 ns per parameter, four-way
 * 1.1–1.4 ns, eight-way 0.8–0.9 ns. The m % 8 leftovers are done FIRST, so the hot loop is the last code V8 sees
 * before compiling it on-stack (see squaredNorm for the deoptimisation this avoids).
 */
export function accumulateScaled(acc: Float64Array, u: Float32Array, w: number): void {
  const n = acc.length;
  const head = n % 8;
  let i = 0;
  for (; i < head; i += 1) acc[i] += w * u[i];
  for (; i < n; i += 8) {
    acc[i] += w * u[i];
    acc[i + 1] += w * u[i + 1];
    acc[i + 2] += w * u[i + 2];
    acc[i + 3] += w * u[i + 3];
    acc[i + 4] += w * u[i + 4];
    acc[i + 5] += w * u[i + 5];
    acc[i + 6] += w * u[i + 6];
    acc[i + 7] += w * u[i + 7];
  }
}
