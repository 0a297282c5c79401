import * as tf from '@tensorflow/tfjs';
import type { NetworkTask } from '@tessera/protocol';
import { TrainingInputErrorCode, TrainingInputException } from './ml.exception';
import type { LabelArray } from './training-input';

/**
 * Per-example losses [B] of each task, from the network's output [B, k] (logits, or the predicted value):
 * - binary: binary cross-entropy in its stable form max(z, 0) − z·y + log(1 + e^−|z|), targets [B, 1] of 0/1;
 * - multiclass: softmax cross-entropy logsumexp(z) − z_y, targets one-hot [B, K];
 * - regression 'mse': (ŷ − y)²; 'huber' with threshold δ: r²/2 for |r| ≤ δ, δ(|r| − δ/2) beyond (Huber 1964),
 *   written as q²/2 + δ(|r| − q) with q = min(|r|, δ) so that it is smooth and its gradient is bounded by δ.
 * Sums of these (not means) are differentiated, so each example's gradient is its own.
 */
export function perExampleTaskLoss(output: tf.Tensor2D, targets: tf.Tensor2D, task: NetworkTask): tf.Tensor1D {
  return tf.tidy(() => {
    switch (task.kind) {
      case 'binary': {
        const stable = tf.add(
          tf.sub(tf.relu(output), tf.mul(output, targets)),
          tf.log1p(tf.exp(tf.neg(tf.abs(output)))),
        );
        return tf.reshape<tf.Rank.R1>(stable, [-1]);
      }
      case 'multiclass':
        return tf.sub<tf.Tensor1D>(tf.logSumExp(output, 1), tf.sum(tf.mul(output, targets), 1));
      case 'regression': {
        const residual = tf.reshape(tf.sub(output, targets), [-1]);
        if (task.loss === 'mse') return tf.square(residual) as tf.Tensor1D;
        const delta = task.huberDelta ?? 1;
        const size = tf.abs(residual);
        const quadratic = tf.minimum(size, delta);
        return tf.add<tf.Tensor1D>(tf.mul(tf.square(quadratic), 0.5), tf.mul(tf.sub(size, quadratic), delta));
      }
    }
  });
}

/** What the model predicts from its output: P(y = 1) [B, 1], class probabilities [B, K], or the value [B, 1]. */
export function taskPrediction(output: tf.Tensor2D, task: NetworkTask): tf.Tensor2D {
  switch (task.kind) {
    case 'binary':
      return tf.sigmoid(output);
    case 'multiclass':
      return tf.softmax(output);
    case 'regression':
      return output;
  }
}

/** Width of the targets row: K for multiclass (one-hot), else 1. */
export function targetWidth(task: NetworkTask): number {
  return task.kind === 'multiclass' ? task.classes : 1;
}

/**
 * Checks labels against the task (binary 0/1, multiclass integers 0..K−1, regression finite numbers) and writes the
 * targets row of each example into `into` (row-major, targetWidth values per example). Never echoes a value.
 */
export function writeTargets(
  labels: LabelArray,
  task: NetworkTask,
  into: Float32Array,
  rows?: ArrayLike<number>,
): void {
  const width = targetWidth(task);
  const count = rows === undefined ? labels.length : rows.length;
  for (let k = 0; k < count; k++) {
    const row = rows === undefined ? k : rows[k]!;
    const label = labels[row]!;
    if (task.kind === 'regression') {
      into[k] = label;
      continue;
    }
    if (width === 1) {
      into[k] = label;
    } else {
      into.fill(0, k * width, (k + 1) * width);
      into[k * width + label] = 1;
    }
  }
}

/** Throws unless every label is valid for the task. */
export function assertTaskLabels(labels: LabelArray, n: number, task: NetworkTask): void {
  if (labels === null || typeof labels !== 'object' || labels.length !== n) {
    throw new TrainingInputException(TrainingInputErrorCode.Labels, `y must hold ${n} labels, one per row of x`);
  }
  for (let i = 0; i < n; i++) {
    const label = labels[i]!;
    if (task.kind === 'regression') {
      if (!Number.isFinite(label)) {
        throw new TrainingInputException(TrainingInputErrorCode.Labels, `the target at row ${i} is not finite`);
      }
      continue;
    }
    const upper = task.kind === 'binary' ? 1 : task.classes - 1;
    if (!Number.isInteger(label) || label < 0 || label > upper) {
      throw new TrainingInputException(
        TrainingInputErrorCode.Labels,
        `label at row ${i} must be an integer in [0, ${upper}]`,
      );
    }
  }
}

/** Targets tensor [B, width] for a whole label array. */
export function targetsTensor(labels: LabelArray, task: NetworkTask): tf.Tensor2D {
  const width = targetWidth(task);
  const values = new Float32Array(labels.length * width);
  writeTargets(labels, task, values);
  return tf.tensor2d(values, [labels.length, width]);
}
