import { AggregationErrorCode, AggregationException } from './aggregation.exception';
import type { KrumTrace } from './aggregation-trace';
import type { BlockwiseOptions } from './robust-aggregation';
import {
  checkBatch,
  checkBlockParameters,
  checkReader,
  DEFAULT_BLOCK_PARAMETERS,
  type UpdateBlockReader,
} from './update-blocks';
import {
  combineBlockwise,
  combineInMemory,
  type LinearCombination,
  pairwiseSquaredDistances,
  pairwiseSquaredDistancesBlockwise,
} from './update-geometry';

export interface KrumOptions {
  /** f: how many of the n updates may be Byzantine (arbitrary). Krum needs n > 2f + 2. */
  readonly byzantine: number;
  /**
   * m: how many of the best-scored updates are averaged. 1 (default) is Krum; more is Multi-Krum. At most n − f, so
   * that the average can be made of honest updates only.
   */
  readonly selected?: number;
}

/** The rule's decision: every update's score and the chosen indices. */
export interface KrumSelection {
  /** Krum score of each update: the sum of its n − f − 2 smallest squared distances to the other updates. */
  readonly scores: readonly number[];
  /** The m indices with the lowest scores, best first; ties go to the lower index. */
  readonly selected: readonly number[];
}

export interface KrumResult {
  /** The selected update (Krum) or the mean of the selected ones (Multi-Krum). */
  readonly delta: Float32Array;
  readonly trace: KrumTrace;
}

/** Validates f and m on their own (integers, f ≥ 0, m ≥ 1): what can be checked before n is known. */
export function checkKrumParameters(options: KrumOptions): void {
  const f = options.byzantine;
  const m = options.selected ?? 1;
  if (!Number.isInteger(f) || f < 0) {
    throw new AggregationException(
      AggregationErrorCode.InvalidParameter,
      `Krum's byzantine count f must be an integer ≥ 0, got ${String(f)}`,
    );
  }
  if (!Number.isInteger(m) || m < 1) {
    throw new AggregationException(
      AggregationErrorCode.InvalidParameter,
      `Multi-Krum's selected count must be an integer ≥ 1, got ${String(m)}`,
    );
  }
}

/**
 * Validates f and m against the round's n before any update is read. Throws InvalidParameter (f not an integer ≥ 0,
 * m not an integer in [1, n − f]) or TooFewUpdates (n ≤ 2f + 2, where Krum's guarantee does not hold). Returns m.
 */
export function checkKrumOptions(count: number, options: KrumOptions): number {
  checkKrumParameters(options);
  const f = options.byzantine;
  const m = options.selected ?? 1;
  if (count <= 2 * f + 2) {
    throw new AggregationException(
      AggregationErrorCode.TooFewUpdates,
      `Krum tolerating f = ${f} Byzantine updates needs n > 2f + 2 = ${2 * f + 2} updates; the round has ${count}`,
    );
  }
  if (m > count - f) {
    throw new AggregationException(
      AggregationErrorCode.InvalidParameter,
      `Multi-Krum's selected count must be at most n − f = ${count - f}, got ${m}`,
    );
  }
  return m;
}

/**
 * Krum's selection rule (Blanchard, El Mhamdi, Guerraoui, Stainer 2017, "Machine Learning with Adversaries:
 * Byzantine Tolerant Gradient Descent", §4 for Krum, §5 for Multi-Krum): score(i) = Σ ‖uᵢ − uⱼ‖² over the
 * n − f − 2 updates j ≠ i closest to uᵢ; pick the m lowest scores, computed once (as in the paper's Multi-Krum,
 * not re-scored after each pick). `distances` is the n×n row-major matrix of squared distances.
 */
export function krumSelect(distances: Float64Array, count: number, options: KrumOptions): KrumSelection {
  const m = checkKrumOptions(count, options);
  if (distances.length !== count * count) {
    throw new AggregationException(
      AggregationErrorCode.LengthMismatch,
      `the distance matrix has ${distances.length} entries, expected n² = ${count * count}`,
    );
  }
  const neighbours = count - options.byzantine - 2;
  const row = new Float64Array(count - 1);
  const scores = Array.from({ length: count }, (_, i) => {
    let r = 0;
    for (let j = 0; j < count; j += 1) if (j !== i) row[r++] = distances[i * count + j]!;
    row.sort();
    let score = 0;
    for (let k = 0; k < neighbours; k += 1) score += row[k]!;
    return score;
  });
  const order = scores.map((_, i) => i).sort((a, b) => scores[a]! - scores[b]! || a - b);
  return { scores, selected: order.slice(0, m) };
}

function krumResult(count: number, options: KrumOptions, selection: KrumSelection, delta: Float32Array): KrumResult {
  return {
    delta,
    trace: {
      step: 'krum',
      count,
      byzantine: options.byzantine,
      selectedCount: selection.selected.length,
      selected: [...selection.selected],
      scores: [...selection.scores],
    },
  };
}

/** The mean of the selected updates: weight 1 each, summed in index order, divided by m once. */
function meanOfSelected(selection: KrumSelection): LinearCombination {
  const indices = [...selection.selected].sort((a, b) => a - b);
  return { indices, weights: indices.map(() => 1), denominator: indices.length };
}

/**
 * Krum / Multi-Krum over in-memory updates (Blanchard et al. 2017). Tolerates f Byzantine updates when n > 2f + 2 and
 * the honest updates are i.i.d. with bounded variance; it assumes nothing about the attackers' values. Unweighted.
 * Memory: the n updates plus 8·n² bytes of distances.
 */
export function krum(updates: readonly Float32Array[], options: KrumOptions): KrumResult {
  checkKrumOptions(updates.length, options);
  checkBatch(updates);
  const selection = krumSelect(pairwiseSquaredDistances(updates), updates.length, options);
  return krumResult(updates.length, options, selection, combineInMemory(updates, meanOfSelected(selection)));
}

/**
 * Krum / Multi-Krum through a reader in bounded memory: one pass over all updates accumulates the pairwise squared
 * distances block by block (8·n² bytes), a second pass reads only the m selected updates to average them.
 * Same result as `krum` at the same block size (bit-identical at the default).
 */
export async function krumBlockwise(
  reader: UpdateBlockReader,
  options: KrumOptions & BlockwiseOptions,
): Promise<KrumResult> {
  const blockParameters = options.blockParameters ?? DEFAULT_BLOCK_PARAMETERS;
  checkReader(reader);
  checkBlockParameters(blockParameters);
  checkKrumOptions(reader.count, options);
  const distances = await pairwiseSquaredDistancesBlockwise(reader, blockParameters);
  const selection = krumSelect(distances, reader.count, options);
  const delta = await combineBlockwise(reader, meanOfSelected(selection), blockParameters);
  return krumResult(reader.count, options, selection, delta);
}
