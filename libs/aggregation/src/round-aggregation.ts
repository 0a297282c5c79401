import type { AggregationTrace } from './aggregation-trace';
import { type DeltaAggregator, FedAvgAggregator } from './delta-aggregator';
import { FedAvgServerOptimizer, type ServerOptimizer } from './server-optimizer';

/** One silo's contribution to a round: its delta (local − global) and its number of examples. */
export interface SiloUpdate {
  readonly update: Float32Array;
  readonly weight: number;
  /** Opaque identifier echoed into the trace (the hub's silo id); not used for aggregation. */
  readonly siloId?: string;
}

/** A trace record tagged with the silo it concerns (undefined for round-level records). */
export interface RoundTraceEntry {
  readonly siloId?: string;
  readonly record: AggregationTrace;
}

export interface RoundOutcome {
  /** The next global model. */
  readonly weights: Float32Array;
  readonly count: number;
  readonly totalWeight: number;
  /** Per-update records, then the aggregate's, then the server step's, in application order. */
  readonly trace: readonly RoundTraceEntry[];
}

/**
 * One federated round as a composition (Reddi et al. 2021, Algorithm 1): stream the silos' updates through
 * `aggregator` (FedAvg, DP-FedAvg, …), then let `optimizer` (FedAvg, FedAvgM, FedAdam, …) move the global model.
 * `updates` may be async (read from the blob store one at a time); only the aggregator's O(m) state is kept.
 * A refused update throws and aborts the round; the hub validates uploads beforehand (validateUpdate).
 */
export async function aggregateRound(
  global: Float32Array,
  updates: Iterable<SiloUpdate> | AsyncIterable<SiloUpdate>,
  aggregator: DeltaAggregator,
  optimizer: ServerOptimizer,
): Promise<RoundOutcome> {
  const trace: RoundTraceEntry[] = [];
  for await (const { update, weight, siloId } of updates) {
    for (const record of aggregator.add(update, weight)) trace.push({ siloId, record });
  }
  const aggregate = aggregator.finish();
  for (const record of aggregate.trace) trace.push({ record });
  const step = optimizer.step(global, aggregate.delta);
  trace.push({ record: step.trace });
  return { weights: step.weights, count: aggregate.count, totalWeight: aggregate.totalWeight, trace };
}

/**
 * Plain FedAvg (McMahan et al. 2017, Algorithm 1) in one call: x + η·Σ nₖΔₖ / Σ nₖ, streaming over `updates`.
 * η = `serverLearningRate` (1 = FedAvg as published).
 */
export function fedAvg(global: Float32Array, updates: Iterable<SiloUpdate>, serverLearningRate = 1): Float32Array {
  const aggregator = new FedAvgAggregator(global.length);
  for (const { update, weight } of updates) aggregator.add(update, weight);
  const optimizer = new FedAvgServerOptimizer({ length: global.length, serverLearningRate });
  return optimizer.step(global, aggregator.finish().delta).weights;
}
