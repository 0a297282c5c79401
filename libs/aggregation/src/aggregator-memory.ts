import { AggregationErrorCode, AggregationException } from './aggregation.exception';
import { SORT_TILE_PARAMETERS } from './column-sorter';
import type { AggregationChoice, AggregatorKind } from './robust-aggregator';
import { checkBlockParameters, DEFAULT_BLOCK_PARAMETERS } from './update-blocks';

/*
 * How much memory an aggregation needs, before it runs: the hub sizes a plan's aggregator for n silos and an
 * m-parameter model and refuses the plan (or picks the blockwise variant) when it would not fit its budget.
 * Bytes count the typed arrays the library allocates or needs resident — the updates it holds (all n in memory,
 * n blocks when blockwise, one when streaming), its working arrays and its float32 result — and not the caller's
 * global model, a reader's own buffers, or a few hundred bytes of JavaScript objects. The benchmark
 * (bench/aggregation/robust.bench.mjs) measures peak RSS beside these figures.
 */

/** streaming: one update at a time (FedAvg). in-memory: every update held at once. blockwise: n blocks at a time. */
export type AggregationVariant = 'streaming' | 'in-memory' | 'blockwise';

export interface AggregationShape {
  /** n: updates in the round (silos expected to report). */
  readonly updates: number;
  /** m: parameters of the model. */
  readonly parameters: number;
  /** Coordinates per block of the blockwise variant; default DEFAULT_BLOCK_PARAMETERS. */
  readonly blockParameters?: number;
  /** true when the updates' norms were recorded at upload, so norm bounding needs no pass of its own. Default false. */
  readonly normsKnown?: boolean;
}

/** One way to run an aggregation and what it costs. */
export interface AggregationMemory {
  readonly aggregator: AggregatorKind;
  readonly variant: AggregationVariant;
  /** true when all n updates must be in memory at the same time. */
  readonly holdsEveryUpdate: boolean;
  /** Peak bytes (see the module comment for what is counted). */
  readonly bytes: number;
  /** Passes over the stored updates (a pass reading only some of them counts as one). */
  readonly passes: number;
  /** The byte count as a formula in n, m, B (block) and T (sort tile), for messages and docs. */
  readonly formula: string;
}

const LABELS: Record<AggregatorKind, string> = {
  fedavg: 'FedAvg',
  'coordinate-median': 'coordinate-wise median',
  'trimmed-mean': 'trimmed mean',
  krum: 'Krum',
  'geometric-median': 'geometric median',
};

function checkShape(shape: AggregationShape): { n: number; m: number; b: number; t: number } {
  for (const [name, value] of [
    ['updates', shape.updates],
    ['parameters', shape.parameters],
  ] as const) {
    if (!Number.isInteger(value) || value < 1) {
      throw new AggregationException(AggregationErrorCode.InvalidParameter, `${name} must be an integer ≥ 1`);
    }
  }
  const blockParameters = shape.blockParameters ?? DEFAULT_BLOCK_PARAMETERS;
  checkBlockParameters(blockParameters);
  const b = Math.min(blockParameters, shape.parameters);
  return { n: shape.updates, m: shape.parameters, b, t: Math.min(SORT_TILE_PARAMETERS, b) };
}

/**
 * Every way to run `choice` for `shape`, fewest passes first: FedAvg streams (one update, the float64 sum and the
 * result: 16·m); the robust aggregators run in memory (all 4·n·m bytes of updates) or blockwise (n blocks of B).
 * Norm bounding adds, in memory, a copy of each clipped update (counted as all n: the bound does not say how many
 * will be clipped); blockwise, one scratch block per update, and one pass for the norms unless they are known.
 */
export function aggregationMemory(choice: AggregationChoice, shape: AggregationShape): AggregationMemory[] {
  const { n, m, b, t } = checkShape(shape);
  const kind = choice.aggregator.kind;
  const bounded = choice.normBound !== undefined;
  const normPass = bounded && !shape.normsKnown ? 1 : 0;
  const entry = (variant: AggregationVariant, bytes: number, passes: number, formula: string): AggregationMemory => ({
    aggregator: kind,
    variant,
    holdsEveryUpdate: variant === 'in-memory',
    bytes,
    passes,
    formula,
  });
  if (kind === 'fedavg') {
    // One update being added, the float64 sum, the float32 mean; bounding copies the one update it scales.
    return [
      entry(
        'streaming',
        16 * m + (bounded ? 4 * m : 0),
        1,
        bounded ? '4m + 8m + 4m + 4m (scaled copy)' : '4m + 8m + 4m',
      ),
    ];
  }
  const inMemoryBound = bounded ? 4 * n * m : 0;
  const blockBound = bounded ? 4 * n * b : 0;
  const boundNote = (block: boolean): string =>
    bounded ? (block ? ' + 4nB (scaled blocks)' : ' + 4nm (clipped copies)') : '';
  if (kind === 'coordinate-median' || kind === 'trimmed-mean') {
    // n sort rows of T float32 (+ T float64 sums for the trimmed mean), the float32 result.
    const sums = kind === 'trimmed-mean' ? 8 * t : 0;
    const sumsNote = kind === 'trimmed-mean' ? ' + 8T' : '';
    const work = 4 * n * t + sums + 4 * m;
    return [
      entry('in-memory', 4 * n * m + work + inMemoryBound, 1, `4nm + 4nT${sumsNote} + 4m${boundNote(false)}`),
      entry('blockwise', 4 * n * b + work + blockBound, 1 + normPass, `4nB + 4nT${sumsNote} + 4m${boundNote(true)}`),
    ];
  }
  // Krum, geometric median: the n×n float64 distance matrix, a block of float64 sums for the combination, the result.
  const work = 8 * n * n + 8 * b + 4 * m;
  return [
    entry('in-memory', 4 * n * m + work + inMemoryBound, 1, `4nm + 8n² + 8B + 4m${boundNote(false)}`),
    entry('blockwise', 4 * n * b + work + blockBound, 2 + normPass, `4nB + 8n² + 8B + 4m${boundNote(true)}`),
  ];
}

/** Memory of update screening: the two reference vectors (aggregate, previous update), 24·n bytes of sums, the updates. */
export function screeningMemory(
  shape: AggregationShape,
  options: { readonly previousUpdate: boolean },
): Omit<AggregationMemory, 'aggregator'>[] {
  const { n, m, b } = checkShape(shape);
  const references = options.previousUpdate ? 8 * m : 4 * m;
  const refNote = options.previousUpdate ? '8m' : '4m';
  return [
    {
      variant: 'in-memory',
      holdsEveryUpdate: true,
      bytes: 4 * n * m + references + 24 * n,
      passes: 1,
      formula: `4nm + ${refNote} + 24n`,
    },
    {
      variant: 'blockwise',
      holdsEveryUpdate: false,
      bytes: 4 * n * b + references + 24 * n,
      passes: 1,
      formula: `4nB + ${refNote} + 24n`,
    },
  ];
}

/** Bytes for people: 1536 → "1.5 KiB", 2.56e9 → "2.38 GiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

/**
 * The variant to run within `budgetBytes`: the first of aggregationMemory's list that fits (in memory — one read of
 * the updates — before blockwise). Throws MemoryBudgetExceeded, naming every variant's need and the budget, when
 * none fits; the hub shows that message when it refuses the plan.
 */
export function chooseAggregationVariant(
  choice: AggregationChoice,
  shape: AggregationShape,
  budgetBytes: number,
): AggregationMemory {
  if (!(budgetBytes > 0 && Number.isFinite(budgetBytes))) {
    throw new AggregationException(
      AggregationErrorCode.InvalidParameter,
      `the memory budget must be a finite number > 0`,
    );
  }
  const variants = aggregationMemory(choice, shape);
  const fitting = variants.find((v) => v.bytes <= budgetBytes);
  if (fitting) return fitting;
  const needs = variants
    .map(
      (v) => `${formatBytes(v.bytes)} ${v.variant} (${v.passes} ${v.passes === 1 ? 'pass' : 'passes'}, ${v.formula})`,
    )
    .join(' or ');
  const bounding = choice.normBound ? ' with norm bounding' : '';
  throw new AggregationException(
    AggregationErrorCode.MemoryBudgetExceeded,
    `${LABELS[choice.aggregator.kind]}${bounding} of ${shape.updates} updates × ${shape.parameters.toLocaleString('en-US')} ` +
      `parameters needs ${needs}; the configured aggregation memory is ${formatBytes(budgetBytes)}. ` +
      `Raise the budget, use smaller blocks, or plan fewer silos or a smaller model.`,
  );
}
