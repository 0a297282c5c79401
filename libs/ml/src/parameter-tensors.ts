import * as tf from '@tensorflow/tfjs';
import { TrainingInputErrorCode, TrainingInputException } from './ml.exception';
import type { ModelSpec } from './model-spec';
import { assertParameters, parameterLayout } from './parameter-layout';

/**
 * tfjs variables in layout order (kernel, bias per layer) holding a copy of `flat`.
 * Needs an initialised backend (see selectBackend); the caller disposes the variables.
 */
export function fromFlat(spec: ModelSpec, flat: Float32Array): tf.Variable[] {
  assertParameters(spec, flat);
  return parameterLayout(spec).entries.map((entry) =>
    tf.variable(tf.tensor(flat.slice(entry.offset, entry.offset + entry.length), [...entry.shape], 'float32')),
  );
}

/** Copies tensors given in layout order (for example from fromFlat) into one Float32Array. */
export function toFlat(spec: ModelSpec, tensors: readonly tf.Tensor[]): Float32Array {
  const layout = parameterLayout(spec);
  if (tensors.length !== layout.entries.length) {
    throw new TrainingInputException(
      TrainingInputErrorCode.Parameters,
      `expected ${layout.entries.length} tensors, got ${tensors.length}`,
    );
  }
  const flat = new Float32Array(layout.size);
  layout.entries.forEach((entry, i) => {
    const tensor = tensors[i] as tf.Tensor;
    if (tensor.size !== entry.length || tensor.shape.join(',') !== entry.shape.join(',')) {
      throw new TrainingInputException(
        TrainingInputErrorCode.Parameters,
        `tensor ${i} must have shape [${entry.shape.join(', ')}] for ${entry.name}`,
      );
    }
    flat.set(tensor.dataSync(), entry.offset);
  });
  return flat;
}
