import { AggregationErrorCode, AggregationException } from './aggregation.exception';
import type { AggregationTrace } from './aggregation-trace';
import {
  checkGeometricMedianOptions,
  geometricMedian,
  geometricMedianBlockwise,
  type GeometricMedianOptions,
} from './geometric-median';
import { checkKrumOptions, checkKrumParameters, krum, krumBlockwise, type KrumOptions } from './krum';
import { boundNorms, boundNormsBlockwise, checkNormBound, type NormBound, type NormBoundDecision } from './norm-bound';
import {
  checkTrimFraction,
  coordinateMedian,
  coordinateMedianBlockwise,
  trimmedCount,
  trimmedMean,
  trimmedMeanBlockwise,
} from './robust-aggregation';
import { checkBatch, checkReader, type UpdateBlockReader } from './update-blocks';

/*
 * The plan-level choice of aggregator, validated and dispatched in one place: the hub turns a study plan into an
 * AggregationChoice, checks it when the plan is made (checkAggregationChoice, with the number of silos), sizes it
 * (aggregator-memory.ts), and runs it on the round's updates, in memory or through a block reader.
 */

/** A robust aggregator and its parameters, as a plan states them. */
export type RobustAggregatorSpec =
  | { readonly kind: 'coordinate-median' }
  | { readonly kind: 'trimmed-mean'; readonly trimFraction: number }
  | ({ readonly kind: 'krum' } & KrumOptions)
  | ({ readonly kind: 'geometric-median' } & Omit<GeometricMedianOptions, 'weights'>);

/** Every aggregator a plan can name: streaming FedAvg (FedAvgAggregator, weighted) or a robust one. */
export type AggregatorSpec = { readonly kind: 'fedavg' } | RobustAggregatorSpec;

export type AggregatorKind = AggregatorSpec['kind'];

/** The aggregator, optionally preceded by server-side norm bounding of every update. */
export interface AggregationChoice {
  readonly aggregator: AggregatorSpec;
  readonly normBound?: NormBound;
}

/** What a robust aggregation produced. */
export interface RobustAggregate {
  readonly delta: Float32Array;
  readonly count: number;
  /** Round-level records in application order: norm bounding (if any), then the aggregator's. */
  readonly trace: readonly AggregationTrace[];
  /** Per-update records (norm bounding's clip records), indexed like the inputs; empty lists without bounding. */
  readonly updateTrace: readonly (readonly AggregationTrace[])[];
}

/**
 * Validates a choice when a plan is made: every parameter in range and, when `count` (the number of silos expected
 * to report) is given, the guarantees that depend on it (Krum: n > 2f + 2 and m ≤ n − f). Throws AggregationException
 * (InvalidParameter, TooFewUpdates) with a message for the steward.
 */
export function checkAggregationChoice(choice: AggregationChoice, count?: number): void {
  if (choice.normBound !== undefined) checkNormBound(choice.normBound);
  const spec = choice.aggregator;
  switch (spec.kind) {
    case 'fedavg':
    case 'coordinate-median':
      return;
    case 'trimmed-mean':
      checkTrimFraction(spec.trimFraction);
      return;
    case 'krum':
      if (count === undefined) checkKrumParameters(spec);
      else checkKrumOptions(count, spec);
      return;
    case 'geometric-median':
      checkGeometricMedianOptions(count ?? 1, { ...spec, weights: undefined });
      return;
    default:
      throw new AggregationException(
        AggregationErrorCode.InvalidParameter,
        `unknown aggregator ${String((spec as { kind: unknown }).kind)}`,
      );
  }
}

function robustSpecOf(choice: AggregationChoice): RobustAggregatorSpec {
  const spec = choice.aggregator;
  if (spec.kind === 'fedavg') {
    throw new AggregationException(
      AggregationErrorCode.InvalidParameter,
      'FedAvg is a streaming aggregator: run it with FedAvgAggregator (scaleUpdate applies a norm bound per update)',
    );
  }
  return spec;
}

/** Round-level trace of the coordinate-wise aggregators (Krum and the geometric median bring their own). */
function coordinateTrace(spec: RobustAggregatorSpec, count: number): AggregationTrace {
  return spec.kind === 'trimmed-mean'
    ? {
        step: 'trimmed-mean',
        count,
        trimFraction: spec.trimFraction,
        trimmedEachSide: trimmedCount(spec.trimFraction, count),
      }
    : { step: 'coordinate-median', count };
}

function assemble(
  count: number,
  bounding: NormBoundDecision | undefined,
  delta: Float32Array,
  aggregatorTrace: AggregationTrace,
): RobustAggregate {
  return {
    delta,
    count,
    trace: bounding ? [bounding.trace, aggregatorTrace] : [aggregatorTrace],
    updateTrace: Array.from({ length: count }, (_, k) => (bounding ? [bounding.updateTrace[k]!] : [])),
  };
}

/**
 * Runs a robust choice on in-memory updates (deltas): norm bounding first if the plan asks, then the aggregator.
 * Unweighted. Memory: every update at once (aggregationMemory 'in-memory').
 */
export function aggregateRobust(choice: AggregationChoice, updates: readonly Float32Array[]): RobustAggregate {
  const spec = robustSpecOf(choice);
  checkAggregationChoice(choice, updates.length);
  checkBatch(updates);
  const bounding = choice.normBound ? boundNorms(updates, choice.normBound) : undefined;
  const input = bounding ? bounding.updates : updates;
  const n = updates.length;
  switch (spec.kind) {
    case 'coordinate-median':
      return assemble(n, bounding, coordinateMedian(input), coordinateTrace(spec, n));
    case 'trimmed-mean':
      return assemble(n, bounding, trimmedMean(input, spec.trimFraction), coordinateTrace(spec, n));
    case 'krum': {
      const result = krum(input, spec);
      return assemble(n, bounding, result.delta, result.trace);
    }
    case 'geometric-median': {
      const result = geometricMedian(input, { ...spec, weights: undefined });
      return assemble(n, bounding, result.delta, result.trace);
    }
  }
}

export interface BlockwiseAggregationOptions {
  /** Coordinates per block read; default DEFAULT_BLOCK_PARAMETERS. */
  readonly blockParameters?: number;
  /** The updates' L2 norms if already known (recorded at upload): norm bounding then needs no pass of its own. */
  readonly norms?: readonly number[];
}

/**
 * Runs a robust choice through a block reader, in bounded memory (aggregationMemory 'blockwise'): norm bounding wraps
 * the reader (scaling blocks as they are read), then the aggregator's blockwise version. Same result as
 * aggregateRobust at the same block size.
 */
export async function aggregateRobustBlockwise(
  choice: AggregationChoice,
  reader: UpdateBlockReader,
  options: BlockwiseAggregationOptions = {},
): Promise<RobustAggregate> {
  const spec = robustSpecOf(choice);
  checkReader(reader);
  checkAggregationChoice(choice, reader.count);
  const bounding = choice.normBound ? await boundNormsBlockwise(reader, choice.normBound, options) : undefined;
  const input = bounding ? bounding.reader : reader;
  const n = reader.count;
  const block = options.blockParameters === undefined ? {} : { blockParameters: options.blockParameters };
  switch (spec.kind) {
    case 'coordinate-median':
      return assemble(n, bounding, await coordinateMedianBlockwise(input, block), coordinateTrace(spec, n));
    case 'trimmed-mean':
      return assemble(
        n,
        bounding,
        await trimmedMeanBlockwise(input, spec.trimFraction, block),
        coordinateTrace(spec, n),
      );
    case 'krum': {
      const result = await krumBlockwise(input, { ...spec, ...block });
      return assemble(n, bounding, result.delta, result.trace);
    }
    case 'geometric-median': {
      const result = await geometricMedianBlockwise(input, { ...spec, weights: undefined, ...block });
      return assemble(n, bounding, result.delta, result.trace);
    }
  }
}
