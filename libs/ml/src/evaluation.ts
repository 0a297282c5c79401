import * as tf from '@tensorflow/tfjs';
import { ensureBackend } from './backend-selection';
import { forwardPass, perExampleLoss, targetsTensor, weightsFromFlat } from './dense-network';
import { ModelSpecErrorCode, ModelSpecException, TrainingInputErrorCode, TrainingInputException } from './ml.exception';
import { denseLayers, isBinary, type ModelSpec } from './model-spec';
import { assertParameters } from './parameter-layout';
import { assertExamples, type LabelArray } from './training-input';

export interface EvaluationMetrics {
  /** Mean cross-entropy (binary or categorical), natural log. */
  readonly loss: number;
  /** Fraction correct: threshold 0.5 on the probability for binary models, argmax otherwise. */
  readonly accuracy: number;
  /**
   * ROC AUC; for multi-class models the unweighted mean of one-vs-rest AUCs. Null when undefined
   * (only one class present in y).
   */
  readonly auc: number | null;
  readonly n: number;
  /** Number of examples with label 1 (binary models) or label ≠ 0 (multi-class). */
  readonly positives: number;
}

/**
 * Exact ROC AUC as the Mann–Whitney statistic: AUC = (R₊ − n₊(n₊+1)/2) / (n₊·n₋), where R₊ is the sum of the
 * positives' ranks and tied scores share their mid-rank (Hanley & McNeil, Radiology 1982, §"W statistic"), so each
 * tied positive/negative pair counts 1/2. Returns null when either class is empty.
 */
export function rocAuc(scores: ArrayLike<number>, positive: ArrayLike<boolean>): number | null {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let positiveRankSum = 0;
  let positives = 0;
  for (let start = 0; start < n;) {
    let end = start;
    while (end + 1 < n && scores[order[end + 1]!] === scores[order[start]!]) end++;
    const midRank = (start + end + 2) / 2; // ranks are 1-based
    for (let k = start; k <= end; k++) {
      if (positive[order[k]!]) {
        positiveRankSum += midRank;
        positives++;
      }
    }
    start = end + 1;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return null;
  return (positiveRankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/**
 * Output probabilities, row-major n×k (k = 1 for binary models: P(y = 1)). The forward pass of the registry's
 * dense networks; ONNX and tfjs exports must agree with it.
 */
export async function predict(spec: ModelSpec, parameters: Float32Array, x: Float32Array): Promise<Float32Array> {
  await ensureBackend();
  assertParameters(spec, parameters);
  const n = assertExamples(spec, x, new Uint8Array(x.length / spec.inputDim));
  const weights = weightsFromFlat(spec, parameters);
  try {
    const probabilities = tf.tidy(
      () => forwardPass(denseLayers(spec), weights, tf.tensor2d(x, [n, spec.inputDim])).probabilities,
    );
    const out = probabilities.dataSync() as Float32Array;
    probabilities.dispose();
    return out;
  } finally {
    tf.dispose([...weights.kernels, ...weights.biases]);
  }
}

/** Loss, accuracy, ROC AUC on a labelled set: what a silo reports in federated evaluation. */
export async function evaluate(
  spec: ModelSpec,
  parameters: Float32Array,
  x: Float32Array,
  y: LabelArray,
): Promise<EvaluationMetrics> {
  await ensureBackend();
  assertParameters(spec, parameters);
  const n = assertExamples(spec, x, y);
  const layers = denseLayers(spec);
  const classes = layers[layers.length - 1]!.units;
  const weights = weightsFromFlat(spec, parameters);
  let probabilities: Float32Array;
  let loss: number;
  try {
    const result = tf.tidy(() => {
      const trace = forwardPass(layers, weights, tf.tensor2d(x, [n, spec.inputDim]));
      const meanLoss = tf.mean(perExampleLoss(trace.logits, targetsTensor(y, classes), classes === 1));
      return { probabilities: trace.probabilities, meanLoss };
    });
    probabilities = result.probabilities.dataSync() as Float32Array;
    loss = result.meanLoss.dataSync()[0]!;
    tf.dispose([result.probabilities, result.meanLoss]);
  } finally {
    tf.dispose([...weights.kernels, ...weights.biases]);
  }

  let correct = 0;
  let positives = 0;
  let auc: number | null;
  if (classes === 1) {
    for (let i = 0; i < n; i++) {
      if ((probabilities[i]! >= 0.5 ? 1 : 0) === y[i]) correct++;
      if (y[i] === 1) positives++;
    }
    auc = rocAuc(
      probabilities,
      Array.from(y, (label) => label === 1),
    );
  } else {
    for (let i = 0; i < n; i++) {
      let best = 0;
      for (let c = 1; c < classes; c++)
        if (probabilities[i * classes + c]! > probabilities[i * classes + best]!) best = c;
      if (best === y[i]) correct++;
      if (y[i] !== 0) positives++;
    }
    const perClass: number[] = [];
    for (let c = 0; c < classes; c++) {
      const scores = Float32Array.from({ length: n }, (_, i) => probabilities[i * classes + c]!);
      const value = rocAuc(
        scores,
        Array.from(y, (label) => label === c),
      );
      if (value !== null) perClass.push(value);
    }
    auc = perClass.length === 0 ? null : perClass.reduce((sum, v) => sum + v, 0) / perClass.length;
  }
  return { loss, accuracy: correct / n, auc, n, positives };
}

/** Per true label, how many test records fall in each score bin. */
export interface ScoreHistograms {
  /** negatives[b]: records with label 0 whose predicted P(y = 1) lies in bin b. */
  readonly negatives: number[];
  /** positives[b]: the same for records with label 1. */
  readonly positives: number[];
}

/**
 * Exact histograms of a binary model's predicted P(y = 1) on a labelled set, one per true label, in `bins` equal
 * bins of [0, 1]: bin b = [b/B, (b+1)/B), the last bin including 1 (the protocol's NoisyEvaluation). Each record
 * adds 1 to exactly one count, decided by that record alone, so adding or removing a record changes one count by
 * one (L2 sensitivity 1): the agent adds the discrete Gaussian noise before anything leaves the silo. With an even
 * B the bins never straddle 0.5, so accuracy at threshold 0.5 is exact from the histograms (as evaluate() counts
 * it, p ≥ 0.5 predicting 1: p·B is exact in double for a float32 p and B < 2^29).
 */
export async function scoreHistograms(
  spec: ModelSpec,
  parameters: Float32Array,
  x: Float32Array,
  y: LabelArray,
  bins: number,
): Promise<ScoreHistograms> {
  if (!(Number.isInteger(bins) && bins >= 2 && bins <= 1024)) {
    throw new TrainingInputException(TrainingInputErrorCode.Bins, 'bins must be an integer in [2, 1024]');
  }
  if (!isBinary(spec)) {
    throw new ModelSpecException(
      ModelSpecErrorCode.Task,
      'score histograms need a binary model (one output, P(y = 1))',
    );
  }
  const n = assertExamples(spec, x, y);
  const probabilities = await predict(spec, parameters, x);
  const negatives = new Array<number>(bins).fill(0);
  const positives = new Array<number>(bins).fill(0);
  for (let i = 0; i < n; i++) {
    const p = probabilities[i]!;
    if (!(p >= 0 && p <= 1)) {
      throw new TrainingInputException(TrainingInputErrorCode.Parameters, 'the model gives a non-finite probability');
    }
    const bin = Math.min(bins - 1, Math.floor(p * bins));
    (y[i] === 1 ? positives : negatives)[bin]!++;
  }
  return { negatives, positives };
}
