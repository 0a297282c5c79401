import {
  AggregationErrorCode,
  AggregationException,
  DigestMismatchException,
  type DigestMismatch,
} from './aggregation.exception';
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
 *
 * Both can check the bytes they sum against digests the caller expects (an update blob's content address): the sum
 * hashes every update as it reads it (ThreadedBlockSum digests, on the worker threads), and a mismatch throws
 * DigestMismatchException naming those updates instead of returning an aggregate (ADR 0021).
 */

/** The SHA-256 (lowercase hex) each update's bytes must have as read, one per update of the source. */
export interface ExpectedDigests {
  readonly expectedDigests?: readonly string[];
}

function checkExpected(expected: readonly string[] | undefined, n: number): void {
  if (expected && expected.length !== n) {
    throw new AggregationException(AggregationErrorCode.InvalidParameter, 'one expected digest per update');
  }
}

/** Throws DigestMismatchException unless every update at `indices` (source order) read as its expected digest. */
function checkDigests(
  expected: readonly string[] | undefined,
  indices: readonly number[],
  digests: readonly string[] | null,
): void {
  if (!expected) return;
  const mismatches: DigestMismatch[] = [];
  indices.forEach((update, j) => {
    const actual = digests?.[j] ?? '';
    if (actual !== expected[update]) mismatches.push({ update, expected: expected[update]!, actual });
  });
  if (mismatches.length > 0) throw new DigestMismatchException(mismatches);
}

export interface FusedFedAvgTerms extends ExpectedDigests {
  readonly weighting: MeanWeighting;
  /** Each update's weight (its example count), validated like FedAvgAggregator.add; ignored when unweighted. */
  readonly weights: readonly number[];
  /** Norm-bounding factors (decideNormBound), one per update; omitted: none. */
  readonly scales?: readonly number[];
}

/**
 * FedAvg (McMahan et al. 2017, Algorithm 1): Σ wᵢ·sᵢ·Δᵢ / Σ wᵢ over every update of `source`, for updates already
 * validated on receipt (finite, right length). A non-finite aggregate is refused (NonFiniteValue). With
 * expectedDigests, bytes that did not hash as expected are refused first (DigestMismatchException).
 */
export async function fusedFedAvg(
  sum: ThreadedBlockSum,
  source: UpdateBlockSource,
  terms: FusedFedAvgTerms,
): Promise<AggregatedDelta> {
  const n = source.count;
  if (n === 0) throw new AggregationException(AggregationErrorCode.EmptyAggregate, 'no update has been accepted yet');
  terms.weights.forEach((w) => assertWeight(w));
  checkExpected(terms.expectedDigests, n);
  const used = terms.weighting === 'weighted' ? terms.weights : terms.weights.map(() => 1);
  let totalWeight = 0;
  for (const w of used) totalWeight += w;
  const indices = Array.from({ length: n }, (_, k) => k);
  const { digests } = await sum.sum(source, {
    indices,
    weights: used,
    ...(terms.scales ? { scales: terms.scales.map((f) => (f < 1 ? f : 1)) } : {}),
    digests: terms.expectedDigests !== undefined,
  });
  checkDigests(terms.expectedDigests, indices, digests);
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
 * during the pass (one read); the others are measured first (a second read of those only). With expectedDigests,
 * both reads are hashed as they happen and checked before any norm or sum is used (DigestMismatchException).
 */
export async function fusedDpFedAvg(
  sum: ThreadedBlockSum,
  source: UpdateBlockSource,
  reportedWeights: readonly number[],
  receiptNorms: readonly (number | null)[],
  options: DpFedAvgOptions,
  noise: SumNoiseMechanism,
  integrity: ExpectedDigests = {},
): Promise<AggregatedDelta & { readonly updateTrace: readonly (readonly AggregationTrace[])[] }> {
  const n = source.count;
  if (n === 0) throw new AggregationException(AggregationErrorCode.EmptyAggregate, 'no update has been accepted yet');
  reportedWeights.forEach((w) => assertWeight(w));
  const expected = integrity.expectedDigests;
  checkExpected(expected, n);
  const S = options.clippingNorm;
  const exact: (number | null)[] = receiptNorms.map((r) =>
    r !== null && r < S * (1 - RECEIPT_NORM_MARGIN) ? null : -1,
  );
  // The updates not clearly under S: their exact norms first, in one read of those (hashed when asked).
  const measured = exact.flatMap((e, k) => (e === null ? [] : [k]));
  const first = measured.map(() => new StreamingSquaredNorm(source.length));
  const scanned = await sum.scan(source, {
    indices: measured,
    onBlock: (j, values) => first[j]!.push(values),
    digests: expected !== undefined,
  });
  checkDigests(expected, measured, scanned.digests);
  measured.forEach((k, j) => (exact[k] = checkedNorm(first[j]!, k)));
  const streamed = exact.map((e) => (e === null ? new StreamingSquaredNorm(source.length) : null));
  const factors = exact.map((e) => (e !== null && e > S ? (S / e) * (1 - 2 ** -23) : 1));
  const all = Array.from({ length: n }, (_, k) => k);
  const { digests } = await sum.sum(source, {
    indices: all,
    weights: factors.map(() => 1),
    scales: factors,
    onBlock: (k, values) => streamed[k]?.push(values),
    digests: expected !== undefined,
  });
  checkDigests(expected, all, digests);
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
