import { AggregationErrorCode, AggregationException } from './aggregation.exception';
import type { AggregationTrace, ClipTrace, MeanTrace, WeightTrace } from './aggregation-trace';
import type { AggregatedDelta } from './delta-aggregator';
import { releaseDpFedAvgSum, type DpFedAvgOptions, type SumNoiseMechanism } from './dp-fed-avg';
import { StreamingSquaredNorm } from './streaming-norm';
import type { ThreadedBlockSum, UpdateBlockSource } from './threaded-block-sum';
import { assertWeight, squaredNorm } from './update-validation';
import type { MeanWeighting } from './weighted-mean-accumulator';

/*
 * FedAvg and DP-FedAvg over updates read block by block into a ThreadedBlockSum (fused SIMD kernel, worker threads),
 * giving the same bits and the same trace as FedAvgAggregator (updatesPrevalidated) and DpFedAvgAggregator fed the
 * same updates one at a time — the hub's rounds use these, the classes remain the reference they are tested against.
 */

export interface FusedFedAvgTerms {
  readonly weighting: MeanWeighting;
  /** Each update's weight (its example count), validated like FedAvgAggregator.add; ignored when unweighted. */
  readonly weights: readonly number[];
  /** Norm-bounding factors (decideNormBound), one per update; omitted: none. */
  readonly scales?: readonly number[];
}

/**
 * FedAvg (McMahan et al. 2017, Algorithm 1): Σ wᵢ·sᵢ·Δᵢ / Σ wᵢ over every update of `source`, for updates already
 * validated on receipt (finite, right length). A non-finite aggregate is refused (NonFiniteValue).
 */
export async function fusedFedAvg(
  sum: ThreadedBlockSum,
  source: UpdateBlockSource,
  terms: FusedFedAvgTerms,
): Promise<AggregatedDelta> {
  const n = source.count;
  if (n === 0) throw new AggregationException(AggregationErrorCode.EmptyAggregate, 'no update has been accepted yet');
  terms.weights.forEach((w) => assertWeight(w));
  const used = terms.weighting === 'weighted' ? terms.weights : terms.weights.map(() => 1);
  let totalWeight = 0;
  for (const w of used) totalWeight += w;
  const indices = Array.from({ length: n }, (_, k) => k);
  await sum.sum(source, {
    indices,
    weights: used,
    ...(terms.scales ? { scales: terms.scales.map((f) => (f < 1 ? f : 1)) } : {}),
  });
  const delta = await sum.quotient(totalWeight);
  if (!Number.isFinite(squaredNorm(delta))) {
    throw new AggregationException(AggregationErrorCode.NonFiniteValue, 'aggregate holds a non-finite value');
  }
  const mean: MeanTrace = { step: 'mean', weighting: terms.weighting, count: n, totalWeight, denominator: totalWeight };
  return { delta, count: n, totalWeight, trace: [mean] };
}

/** Relative margin under S below which a receipt norm proves the exact norm ≤ S (they differ by ~1e-15 relative). */
const RECEIPT_NORM_MARGIN = 1e-6;

/**
 * DP-FedAvg (McMahan et al. 2018; DpFedAvgAggregator): every update clipped to S by its exact float64 norm, weight 1,
 * noise on the sum, fixed denominator W. `receiptNorms` (as measured on upload, null when unknown) only decide which
 * updates need their exact norm before the pass: one clearly under S is summed unscaled and its exact norm measured
 * during the pass (one read); the others are measured first (a second read of those only).
 */
export async function fusedDpFedAvg(
  sum: ThreadedBlockSum,
  source: UpdateBlockSource,
  reportedWeights: readonly number[],
  receiptNorms: readonly (number | null)[],
  options: DpFedAvgOptions,
  noise: SumNoiseMechanism,
): Promise<AggregatedDelta & { readonly updateTrace: readonly (readonly AggregationTrace[])[] }> {
  const n = source.count;
  if (n === 0) throw new AggregationException(AggregationErrorCode.EmptyAggregate, 'no update has been accepted yet');
  reportedWeights.forEach((w) => assertWeight(w));
  const S = options.clippingNorm;
  const exact: (number | null)[] = receiptNorms.map((r) =>
    r !== null && r < S * (1 - RECEIPT_NORM_MARGIN) ? null : -1,
  );
  const block = new Float32Array(sum.blockParameters);
  for (let k = 0; k < n; k += 1) {
    if (exact[k] === null) continue;
    const norm = new StreamingSquaredNorm(source.length);
    for (let start = 0; start < source.length; start += block.length) {
      const end = Math.min(source.length, start + block.length);
      const view = block.subarray(0, end - start);
      await source.readInto(k, start, end, view);
      norm.push(view);
    }
    exact[k] = checkedNorm(norm, k);
  }
  const streamed = exact.map((e) => (e === null ? new StreamingSquaredNorm(source.length) : null));
  const factors = exact.map((e) => (e !== null && e > S ? (S / e) * (1 - 2 ** -23) : 1));
  await sum.sum(source, {
    indices: Array.from({ length: n }, (_, k) => k),
    weights: factors.map(() => 1),
    scales: factors,
    onBlock: (k, values) => streamed[k]?.push(values),
  });
  const norms = exact.map((e, k) => e ?? checkedNorm(streamed[k]!, k));
  norms.forEach((norm, k) => {
    if (exact[k] === null && norm > S) {
      throw new AggregationException(
        AggregationErrorCode.InvalidParameter,
        `update #${k}: its receipt norm put it under the clipping norm, its exact norm ${norm} is above ${S}`,
      );
    }
  });
  const base = { sum: sum.values.slice(), count: n, totalWeight: n, weighting: 'unweighted' as const };
  const released = releaseDpFedAvgSum(base, options, noise);
  const updateTrace = norms.map((norm, k) => {
    const weight: WeightTrace = { step: 'weight', reportedWeight: reportedWeights[k]!, appliedWeight: 1 };
    const clip: ClipTrace = { step: 'clip', norm, clippingNorm: S, factor: factors[k]! };
    return [weight, clip];
  });
  return { ...released, updateTrace };
}

function checkedNorm(norm: StreamingSquaredNorm, k: number): number {
  const s = norm.value;
  if (!Number.isFinite(s)) {
    throw new AggregationException(AggregationErrorCode.NonFiniteValue, `update #${k} holds a non-finite value`);
  }
  return Math.sqrt(s);
}
