import { AggregationErrorCode, AggregationException } from './aggregation.exception';
import type { ClipTrace, NormBoundTrace } from './aggregation-trace';
import { medianOf } from './order-statistics.util';
import {
  checkBatch,
  checkBlockParameters,
  checkReader,
  DEFAULT_BLOCK_PARAMETERS,
  type UpdateBlockReader,
} from './update-blocks';
import { updateNorms, updateNormsBlockwise } from './update-geometry';

/**
 * Server-side norm bounding: every update is scaled to L2 ≤ a bound before aggregation, so no single silo can move
 * the aggregate by more than the bound (a ×10 scaling attack becomes a ×1 one); the defence Sun, Kairouz, Suresh,
 * McMahan 2019 ("Can You Really Backdoor Federated Learning?") found effective against backdoors. 'fixed': the bound
 * comes from the plan (parameter units). 'median-multiple': the bound is `multiplier` × the round's median norm, so it
 * follows the shrinking update scale of training and fewer than half of the silos cannot inflate it (an adaptive
 * threshold in the spirit of quantile-based clipping, Andrew et al. 2021, here without privacy).
 */
export type NormBound =
  | { readonly mode: 'fixed'; readonly maxNorm: number }
  | { readonly mode: 'median-multiple'; readonly multiplier: number };

/** What norm bounding decided for a round: the bound and each update's scale factor, with their trace. */
export interface NormBoundDecision {
  readonly bound: number;
  readonly medianNorm: number;
  /** min(1, bound / normₖ) per update (1 for a zero update). */
  readonly factors: readonly number[];
  readonly trace: NormBoundTrace;
  /** One ClipTrace per update, indexed like the inputs. */
  readonly updateTrace: readonly ClipTrace[];
}

/** Throws InvalidParameter unless the bound's own parameter is a finite number (maxNorm ≥ 0, multiplier > 0). */
export function checkNormBound(bound: NormBound): void {
  if (bound.mode === 'fixed') {
    if (!(bound.maxNorm >= 0 && Number.isFinite(bound.maxNorm))) {
      throw new AggregationException(AggregationErrorCode.InvalidParameter, `maxNorm must be a finite number ≥ 0`);
    }
    return;
  }
  if (bound.mode === 'median-multiple') {
    if (!(bound.multiplier > 0 && Number.isFinite(bound.multiplier))) {
      throw new AggregationException(AggregationErrorCode.InvalidParameter, `multiplier must be a finite number > 0`);
    }
    return;
  }
  throw new AggregationException(
    AggregationErrorCode.InvalidParameter,
    `unknown norm bound mode ${String((bound as { mode: unknown }).mode)}`,
  );
}

/** The bound and scale factors for a round whose updates have L2 norms `norms` (e.g. recorded at upload). */
export function decideNormBound(norms: readonly number[], bound: NormBound): NormBoundDecision {
  checkNormBound(bound);
  if (norms.length === 0) {
    throw new AggregationException(AggregationErrorCode.EmptyAggregate, 'at least one update norm is required');
  }
  norms.forEach((norm, k) => {
    if (!(norm >= 0 && Number.isFinite(norm))) {
      throw new AggregationException(
        AggregationErrorCode.NonFiniteValue,
        `update #${k} has norm ${String(norm)}; a norm is a finite number ≥ 0`,
      );
    }
  });
  const medianNorm = medianOf(norms);
  const limit = bound.mode === 'fixed' ? bound.maxNorm : bound.multiplier * medianNorm;
  const factors = norms.map((norm) => (norm > limit ? limit / norm : 1));
  const updateTrace = norms.map((norm, k): ClipTrace => ({
    step: 'clip',
    norm,
    clippingNorm: limit,
    factor: factors[k]!,
  }));
  const trace: NormBoundTrace = {
    step: 'norm-bound',
    mode: bound.mode,
    bound: limit,
    medianNorm,
    ...(bound.mode === 'median-multiple' ? { multiplier: bound.multiplier } : {}),
    clipped: factors.filter((f) => f < 1).length,
  };
  return { bound: limit, medianNorm, factors, trace, updateTrace };
}

/** `update` scaled by `factor` into a new array (each value rounded to float32), or `update` itself when factor = 1. */
export function scaleUpdate(update: Float32Array, factor: number): Float32Array {
  if (factor === 1) return update;
  const out = new Float32Array(update.length);
  for (let i = 0; i < update.length; i += 1) out[i] = update[i]! * factor;
  return out;
}

/**
 * Norm bounding of in-memory updates: the decision and the bounded updates (copies only of those scaled down).
 * Memory: up to one extra copy per clipped update.
 */
export function boundNorms(
  updates: readonly Float32Array[],
  bound: NormBound,
): NormBoundDecision & { readonly updates: readonly Float32Array[] } {
  checkNormBound(bound);
  checkBatch(updates);
  const decision = decideNormBound(updateNorms(updates), bound);
  return { ...decision, updates: updates.map((u, k) => scaleUpdate(u, decision.factors[k]!)) };
}

/**
 * Norm bounding through a reader: the norms come from `options.norms` (the hub recorded each one at upload) or from
 * one pass over the updates; the returned reader scales each block as it is read (one scratch block per clipped
 * update, reused from block to block), so the bounded updates are never materialised.
 */
export async function boundNormsBlockwise(
  reader: UpdateBlockReader,
  bound: NormBound,
  options: { readonly norms?: readonly number[]; readonly blockParameters?: number } = {},
): Promise<NormBoundDecision & { readonly reader: UpdateBlockReader }> {
  checkNormBound(bound);
  checkReader(reader);
  const blockParameters = options.blockParameters ?? DEFAULT_BLOCK_PARAMETERS;
  checkBlockParameters(blockParameters);
  if (options.norms !== undefined && options.norms.length !== reader.count) {
    throw new AggregationException(
      AggregationErrorCode.LengthMismatch,
      `${options.norms.length} norms for ${reader.count} updates`,
    );
  }
  const norms = options.norms ?? (await updateNormsBlockwise(reader, blockParameters));
  const decision = decideNormBound(norms, bound);
  const scratch = new Map<number, Float32Array>();
  const scaled: UpdateBlockReader = {
    count: reader.count,
    length: reader.length,
    readBlock: async (update, start, end) => {
      const block = await reader.readBlock(update, start, end);
      const factor = decision.factors[update]!;
      if (factor === 1) return block;
      let buffer = scratch.get(update);
      if (buffer === undefined || buffer.length < block.length) {
        buffer = new Float32Array(block.length);
        scratch.set(update, buffer);
      }
      const out = buffer.subarray(0, block.length);
      for (let i = 0; i < block.length; i += 1) out[i] = block[i]! * factor;
      return out;
    },
  };
  return { ...decision, reader: scaled };
}
