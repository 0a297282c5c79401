import { AggregationErrorCode, AggregationException } from './aggregation.exception';
import type { AggregationTrace, MeanTrace } from './aggregation-trace';
import { assertFiniteSquaredNorm } from './update-validation';
import { type MeanWeighting, WeightedMeanAccumulator } from './weighted-mean-accumulator';

/** What a round's aggregation produced: the aggregate delta and how it was made. */
export interface AggregatedDelta {
  /** The aggregate update (same length as the model), to be applied by a server optimizer. */
  readonly delta: Float32Array;
  readonly count: number;
  /** Sum of the weights the strategy used (not necessarily the weights the silos reported). */
  readonly totalWeight: number;
  /** Round-level trace records (mean, noise …), in the order they were applied. */
  readonly trace: readonly AggregationTrace[];
}

/**
 * A streaming aggregation strategy for one round: updates (deltas = local − global) arrive one at a time and the
 * strategy keeps O(m) state. Wrappers (DP-FedAvg) implement the same interface around another strategy.
 */
export interface DeltaAggregator {
  /** Number of model parameters. */
  readonly length: number;
  /** Updates accepted so far. */
  readonly count: number;
  /**
   * Accepts one silo's update with its weight (number of examples) or throws AggregationException, leaving the
   * state unchanged. Returns the per-update trace records (e.g. clipping) for the hub's audit trail.
   */
  add(update: Float32Array, weight: number): readonly AggregationTrace[];
  /** The aggregate so far (non-destructive). Throws EmptyAggregate when nothing was accepted. */
  finish(): AggregatedDelta;
}

/** The undivided float64 sum Σ wᵢ·Δᵢ of a sum strategy, with what made it. */
export interface AggregatedSum {
  readonly sum: Float64Array;
  readonly count: number;
  readonly totalWeight: number;
  readonly weighting: MeanWeighting;
}

/** A strategy whose aggregate is a linear sum of the updates over a denominator: what DP-FedAvg can wrap. */
export interface SumDeltaAggregator extends DeltaAggregator {
  /** Σ wᵢ·Δᵢ / denominator, with the caller's denominator instead of the total weight. */
  finishWithDenominator(denominator: number): AggregatedDelta;
  /** A copy of the float64 sum Σ wᵢ·Δᵢ, not yet divided nor rounded to float32 (DP-FedAvg noises it on a lattice). */
  finishSum(): AggregatedSum;
}

export interface FedAvgAggregatorOptions {
  /** Default 'weighted' (by example counts). */
  readonly weighting?: MeanWeighting;
  /**
   * Fast path, default false. true: the caller guarantees every update was validated before it reaches `add`
   * (finite values, right length — the hub's upload receiver checks finiteness and the norm while streaming), so
   * `add` accumulates in one pass (WeightedMeanAccumulator.addValidated) instead of a read-only check pass plus
   * the accumulation. Same arithmetic, same result for valid updates. A non-finite value is then not refused at
   * `add`; `finish` still refuses a non-finite aggregate (NonFiniteValue), so it cannot reach the model.
   */
  readonly updatesPrevalidated?: boolean;
}

/**
 * FedAvg aggregation (McMahan et al. 2017, "Communication-Efficient Learning of Deep Networks from Decentralized
 * Data", Algorithm 1): the mean of the silos' deltas weighted by their example counts n_k / n. With
 * `weighting: 'unweighted'` every silo counts equally (Reddi et al. 2021, Algorithm 2 averages uniformly).
 */
export class FedAvgAggregator implements SumDeltaAggregator {
  private readonly accumulator: WeightedMeanAccumulator;
  /** See FedAvgAggregatorOptions.updatesPrevalidated. */
  readonly updatesPrevalidated: boolean;

  constructor(
    readonly length: number,
    options: FedAvgAggregatorOptions = {},
  ) {
    this.accumulator = new WeightedMeanAccumulator(length, options.weighting ? { weighting: options.weighting } : {});
    this.updatesPrevalidated = options.updatesPrevalidated ?? false;
  }

  get count(): number {
    return this.accumulator.count;
  }

  /** Sum of the weights used so far. */
  get totalWeight(): number {
    return this.accumulator.totalWeight;
  }

  add(update: Float32Array, weight: number): readonly AggregationTrace[] {
    if (this.updatesPrevalidated) this.accumulator.addValidated(update, weight);
    else this.accumulator.add(update, weight);
    return [];
  }

  finish(): AggregatedDelta {
    return this.finishWithDenominator(this.accumulator.totalWeight);
  }

  /**
   * Σ wᵢ·Δᵢ / `denominator`: the weighted sum over a fixed public denominator instead of the total weight
   * (McMahan et al. 2018 §2, estimator f̃_f). Used by the DP-FedAvg wrapper.
   */
  finishWithDenominator(denominator: number): AggregatedDelta {
    const delta = this.accumulator.quotient(denominator);
    // Defence in depth for the fast path: one pass over m (not n·m) so a non-finite value that slipped past the
    // caller's validation fails the round instead of reaching the global model.
    if (this.updatesPrevalidated) assertFiniteSquaredNorm(delta, 'aggregate');
    const mean: MeanTrace = {
      step: 'mean',
      weighting: this.accumulator.weighting,
      count: this.accumulator.count,
      totalWeight: this.accumulator.totalWeight,
      denominator,
    };
    return { delta, count: this.accumulator.count, totalWeight: this.accumulator.totalWeight, trace: [mean] };
  }

  finishSum(): AggregatedSum {
    const sum = this.accumulator.sumCopy();
    if (this.updatesPrevalidated) {
      for (let i = 0; i < sum.length; i += 1) {
        if (!Number.isFinite(sum[i])) {
          throw new AggregationException(AggregationErrorCode.NonFiniteValue, 'aggregate has a non-finite value');
        }
      }
    }
    const { count, totalWeight, weighting } = this.accumulator;
    return { sum, count, totalWeight, weighting };
  }

  /** Forgets every update, ready for the next round (keeps the allocation). */
  reset(): void {
    this.accumulator.reset();
  }
}
