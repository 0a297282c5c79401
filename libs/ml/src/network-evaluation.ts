import * as tf from '@tensorflow/tfjs';
import type { NetworkSpec } from '@tessera/protocol';
import { ensureBackend } from './backend-selection';
import { binaryMetrics, multiclassMetrics, regressionMetrics, type TaskMetrics } from './metrics';
import { checkNetworkExamples } from './network-data';
import { checkFixedFeatures, requireFixedFront, type NetworkRows } from './network-fixed-features';
import { forwardNetwork } from './network-forward';
import { perExampleTaskLoss, targetsTensor, taskPrediction } from './network-loss';
import { assertNetworkParameters } from './network-model';
import { networkWeightsFromFlat } from './network-training';
import type { LabelArray } from './training-input';

/** Rows per forward pass when predicting: bounds memory on large test sets. */
const PREDICT_CHUNK = 512;

/**
 * The network's predictions, row-major n×k: P(y = 1) (binary, k = 1), class probabilities (multiclass, k = K) or the
 * predicted value (regression, k = 1). Dropout is the identity. ONNX and tfjs exports must agree with it. `rows`:
 * x holds input rows, or the fixed front's features (network-fixed-features.ts).
 */
export async function predictNetwork(
  spec: NetworkSpec,
  parameters: Float32Array,
  x: Float32Array,
  rows: NetworkRows = 'input',
): Promise<Float32Array> {
  await ensureBackend();
  const { network, n } = rows === 'fixed-features' ? checkFixedFeatures(spec, x) : checkNetworkExamples(spec, x);
  assertNetworkParameters(network, parameters);
  const width = rows === 'fixed-features' ? requireFixedFront(network).rowLength : network.table.rowLength;
  const out = new Float32Array(n * network.outputs);
  const weights = networkWeightsFromFlat(network, parameters);
  try {
    for (let start = 0; start < n; start += PREDICT_CHUNK) {
      const count = Math.min(PREDICT_CHUNK, n - start);
      const predicted = tf.tidy(() => {
        const xb = tf.tensor2d(x.subarray(start * width, (start + count) * width), [count, width]);
        return taskPrediction(forwardNetwork(network, weights, xb, { target: 'none', rows }), network.task);
      });
      out.set(predicted.dataSync(), start * network.outputs);
      predicted.dispose();
    }
    return out;
  } finally {
    tf.dispose(weights);
  }
}

/** The mean task loss and every metric of the task on a labelled set: what a silo reports for its held-out split. */
export async function evaluateNetwork(
  spec: NetworkSpec,
  parameters: Float32Array,
  x: Float32Array,
  y: LabelArray,
): Promise<{ loss: number; metrics: TaskMetrics }> {
  const { network, n } = checkNetworkExamples(spec, x, y);
  const predictions = await predictNetwork(spec, parameters, x);
  const width = network.table.rowLength;
  const weights = networkWeightsFromFlat(network, parameters);
  let lossSum = 0;
  try {
    for (let start = 0; start < n; start += PREDICT_CHUNK) {
      const rows = Math.min(PREDICT_CHUNK, n - start);
      const sum = tf.tidy(() => {
        const xb = tf.tensor2d(x.subarray(start * width, (start + rows) * width), [rows, width]);
        const output = forwardNetwork(network, weights, xb, { target: 'none' });
        return tf.sum(
          perExampleTaskLoss(output, targetsTensor(y.subarray(start, start + rows), network.task), network.task),
        );
      });
      lossSum += sum.dataSync()[0]!;
      sum.dispose();
    }
  } finally {
    tf.dispose(weights);
  }
  const task = network.task;
  const metrics =
    task.kind === 'binary'
      ? binaryMetrics(predictions, y)
      : task.kind === 'multiclass'
        ? multiclassMetrics(predictions, y, task.classes)
        : regressionMetrics(predictions, y);
  return { loss: lossSum / n, metrics };
}
