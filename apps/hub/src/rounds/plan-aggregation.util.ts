import {
  AggregationException,
  chooseAggregationVariant,
  screeningMemory,
  formatBytes,
  type AggregationChoice,
  type AggregationMemory,
  type AggregationShape,
  type ScreeningOptions,
} from '@tessera/aggregation';
import type { AggregationPlan, ScreeningPlan, StudyPlan } from '@tessera/protocol';

/*
 * A plan's `aggregation` and `screening` in @tessera/aggregation's terms, and the memory they need. The protocol
 * states the choice without depending on the library; the two shapes are kept identical on purpose, and the
 * assignments below fail to compile if they drift apart.
 */

/** The hub's aggregation budget (TESSERA_AGGREGATION_MEMORY, TESSERA_AGGREGATION_BLOCK_PARAMETERS). */
export interface AggregationBudget {
  readonly budgetBytes: number;
  readonly blockParameters: number;
  /**
   * FedAvg and DP-FedAvg: worker threads of the fused sum (TESSERA_AGGREGATION_THREADS; undefined: one per core, 0:
   * the calling thread), or 'one-by-one' for the earlier path that adds one whole update at a time on the calling
   * thread — the same bits (round-aggregation.spec.ts compares them), kept as the reference.
   */
  readonly sumThreads?: number | 'one-by-one';
}

const FEDAVG: AggregationChoice = { aggregator: { kind: 'fedavg' } };

/** The plan's aggregation as the library runs it; FedAvg when the plan names none (every plan before the option). */
export function aggregationChoiceOf(plan: Pick<StudyPlan, 'aggregation'>): AggregationChoice {
  const planned: AggregationPlan | undefined = plan.aggregation;
  if (!planned) return FEDAVG;
  const choice: AggregationChoice = planned;
  return choice;
}

/** true when the plan names an aggregator other than FedAvg (unweighted, run in memory or blockwise). */
export function isRobust(choice: AggregationChoice): boolean {
  return choice.aggregator.kind !== 'fedavg';
}

/** The plan's screening as the library's options, or null when the plan screens nothing. */
export function screeningOptionsOf(plan: Pick<StudyPlan, 'screening'>): ScreeningOptions | null {
  const planned: ScreeningPlan | undefined = plan.screening;
  if (!planned) return null;
  return {
    threshold: planned.threshold,
    exclude: planned.exclude,
    ...(planned.normScaleFloor !== undefined ? { normScaleFloor: planned.normScaleFloor } : {}),
    ...(planned.cosineScaleFloor !== undefined ? { cosineScaleFloor: planned.cosineScaleFloor } : {}),
  };
}

/** The first of screening's variants that fits the budget (in memory before blockwise), or null when none does. */
export function screeningVariant(
  shape: AggregationShape,
  previousUpdate: boolean,
  budgetBytes: number,
): Omit<AggregationMemory, 'aggregator'> | null {
  return screeningMemory(shape, { previousUpdate }).find((v) => v.bytes <= budgetBytes) ?? null;
}

/**
 * Why the plan's aggregation or screening cannot run within the budget for `parameters` (the model's size) and
 * every invited silo reporting (the most updates a round can have), as plan problems naming their field; empty when
 * both fit, in memory or blockwise. FedAvg streams one update at a time and is not checked (as before the option).
 */
export function aggregationMemoryProblems(
  plan: Pick<StudyPlan, 'aggregation' | 'screening' | 'silos'>,
  parameters: number,
  budget: AggregationBudget,
): string[] {
  const shape: AggregationShape = {
    updates: plan.silos.length,
    parameters,
    blockParameters: budget.blockParameters,
    normsKnown: true,
  };
  const out: string[] = [];
  const choice = aggregationChoiceOf(plan);
  if (isRobust(choice)) {
    try {
      chooseAggregationVariant(choice, shape, budget.budgetBytes);
    } catch (err) {
      if (!(err instanceof AggregationException)) throw err;
      out.push(`aggregation: ${err.message} (TESSERA_AGGREGATION_MEMORY on this hub)`);
    }
  }
  if (plan.screening && !screeningVariant(shape, true, budget.budgetBytes)) {
    const needs = screeningMemory(shape, { previousUpdate: true })
      .map((v) => `${formatBytes(v.bytes)} ${v.variant} (${v.formula})`)
      .join(' or ');
    out.push(
      `screening: screening ${shape.updates} updates × ${parameters.toLocaleString('en-US')} parameters needs ${needs}; ` +
        `the configured aggregation memory is ${formatBytes(budget.budgetBytes)} (TESSERA_AGGREGATION_MEMORY on this hub). ` +
        `Raise the budget, use smaller blocks, or plan fewer silos or a smaller model.`,
    );
  }
  return out;
}
