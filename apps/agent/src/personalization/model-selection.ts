import { seededUniform } from '@tessera/ml';
import { describeCandidate, SELECTION_CANDIDATES, type SelectionCandidate } from '@tessera/protocol';
import type { SplitData, StreamedRows, StudyModel } from '../training/study-model';

/**
 * Method 'select' of plan.personalization: a silo's choice among SELECTION_CANDIDATES by k-fold cross-validation on
 * its own TRAINING split. Each fold's candidates are trained again without the fold (the fine-tuned one from the
 * global model, the local-only one from the initial model, the mixtures from those two) and scored by their loss on
 * it; the candidate of lowest mean loss over all folds wins (ties: the earlier candidate). The test split is never
 * read. The global model itself has seen every training record during the rounds, so its validation loss is
 * optimistic: the choice leans towards the global model, never towards the test split.
 */

/** How a candidate is built from the global model and a local-only model trained on the same records. */
export interface CandidateTrainers {
  /** The final global model, unchanged. */
  global: Float32Array;
  /** Fine-tunes the global model on `data` (the plan's personalization training). */
  fineTune(data: SplitData): Promise<{ parameters: Float32Array; steps: number }>;
  /** Trains a model on `data` alone from the plan's initial model (the local-only baseline's training). */
  localOnly(data: SplitData): Promise<{ parameters: Float32Array; steps: number }>;
}

export interface CandidateScore {
  candidate: SelectionCandidate;
  /** Mean validation loss over the held-out records of every fold (+Infinity when a model diverged). */
  loss: number;
}

export interface Selection {
  chosen: SelectionCandidate;
  /** Every candidate's score, in SELECTION_CANDIDATES order; empty when too few records to cross-validate. */
  scores: CandidateScore[];
  /** Folds actually used (0: too few records, the global model is kept). */
  folds: number;
  /** Local optimisation steps of the folds' training. */
  steps: number;
}

/** α·global + (1 − α)·local, coordinate by coordinate (APFL's mixture with a fixed α). */
export function interpolate(global: Float32Array, local: Float32Array, globalWeight: number): Float32Array {
  if (global.length !== local.length) throw new RangeError('the two models have different layouts');
  const out = new Float32Array(global.length);
  for (let i = 0; i < out.length; i++) out[i] = globalWeight * global[i]! + (1 - globalWeight) * local[i]!;
  return out;
}

/** A candidate's parameters from the global model, the fine-tuned one and the local-only one. */
export function candidateParameters(
  c: SelectionCandidate,
  models: { global: Float32Array; fineTuned: Float32Array; localOnly: Float32Array },
): Float32Array {
  switch (c.kind) {
    case 'global':
      return models.global;
    case 'fine-tuned':
      return models.fineTuned;
    case 'local-only':
      return models.localOnly;
    case 'mix':
      return interpolate(models.global, models.localOnly, c.globalWeight);
  }
}

/**
 * The k folds of n records: a seeded shuffle of 0..n−1, dealt round-robin (fold sizes differ by at most one). Every
 * record is in exactly one fold.
 */
export function foldsOf(n: number, k: number, seed: number): Int32Array[] {
  const order = Int32Array.from({ length: n }, (_, i) => i);
  const random = seededUniform(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  const folds = Array.from({ length: k }, () => [] as number[]);
  order.forEach((row, i) => folds[i % k]!.push(row));
  return folds.map((f) => Int32Array.from(f.sort((a, b) => a - b)));
}

/** The records of `split` at `indices` (in that order), in memory or read through the split's own reader. */
export function subsetSplit(split: SplitData, indices: Int32Array): SplitData {
  const y = new (split.y.constructor as new (n: number) => SplitData['y'])(indices.length);
  indices.forEach((row, k) => (y[k] = split.y[row]!));
  if (split.x instanceof Float32Array) {
    const all = split.x;
    const width = split.n === 0 ? 0 : all.length / split.n;
    const x = new Float32Array(indices.length * width);
    indices.forEach((row, k) => x.set(all.subarray(row * width, (row + 1) * width), k * width));
    return { n: indices.length, y, x };
  }
  const rows = split.x;
  const map = (local: ArrayLike<number>) => Int32Array.from(local, (i) => indices[i]!);
  const streamed: StreamedRows = {
    readPlain: (local, out) => rows.readPlain(map(local), out),
    withAugmentation: (seed) => {
      const source = rows.withAugmentation(seed);
      return { n: indices.length, readRows: (local, out, step) => source.readRows(map(local), out, step) };
    },
    augments: () => rows.augments(),
  };
  return { n: indices.length, y, x: streamed };
}

/**
 * Chooses a candidate by `k`-fold cross-validation on `train` (the silo's training split). With fewer records than
 * folds nothing is validated and the global model is kept.
 */
export async function selectByCrossValidation(
  model: StudyModel,
  trainers: CandidateTrainers,
  train: SplitData,
  k: number,
  seed: number,
): Promise<Selection> {
  if (train.n < k) return { chosen: SELECTION_CANDIDATES[0], scores: [], folds: 0, steps: 0 };
  const folds = foldsOf(train.n, k, seed);
  const lossSums = SELECTION_CANDIDATES.map(() => 0);
  let held = 0;
  let steps = 0;
  for (let f = 0; f < k; f++) {
    const rest = Int32Array.from(folds.flatMap((fold, g) => (g === f ? [] : Array.from(fold))).sort((a, b) => a - b));
    const fitOn = subsetSplit(train, rest);
    const validation = subsetSplit(train, folds[f]!);
    const fineTuned = await trainers.fineTune(fitOn);
    const localOnly = await trainers.localOnly(fitOn);
    steps += fineTuned.steps + localOnly.steps;
    const models = { global: trainers.global, fineTuned: fineTuned.parameters, localOnly: localOnly.parameters };
    for (const [i, c] of SELECTION_CANDIDATES.entries()) {
      const m = await model.evaluate(candidateParameters(c, models), validation);
      const loss = Number.isFinite(m.loss) ? m.loss : Number.POSITIVE_INFINITY;
      lossSums[i]! += loss * m.n;
    }
    held += validation.n;
  }
  const scores = SELECTION_CANDIDATES.map((candidate: SelectionCandidate, i: number) => ({
    candidate,
    loss: lossSums[i]! / held,
  }));
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i]!.loss < scores[best]!.loss) best = i;
  return { chosen: scores[best]!.candidate, scores, folds: k, steps };
}

/** The selection in words, for the silo's log. */
export function describeSelection(s: Selection): string {
  if (s.folds === 0) return 'too few training records to cross-validate: the global model is kept';
  const scores = s.scores.map((x) => `${describeCandidate(x.candidate)} ${x.loss.toFixed(4)}`).join(', ');
  return `chose ${describeCandidate(s.chosen)} by ${s.folds}-fold cross-validation on the training split (mean validation loss: ${scores})`;
}
