import type { NetworkSpec } from '@tessera/protocol';
import { TrainingInputErrorCode, TrainingInputException } from './ml.exception';
import { assertTaskLabels } from './network-loss';
import { compileNetwork, type CompiledNetwork } from './network-model';
import type { LabelArray } from './training-input';

/**
 * The data a network reads: n rows of `rowLength` values, row-major. Tabular: the numeric features, then one code
 * per categorical column (an integer 0..levels−1, exact in float32). Image: height × width × channels, channels last.
 */
export interface NetworkExamples {
  readonly network: CompiledNetwork;
  readonly n: number;
}

/**
 * Validates rows (and labels when given) against a network: length a multiple of the row length, every value finite,
 * every categorical code an integer in range, labels valid for the task. Errors name the row and column, never a
 * value (hospital records must not reach a log through an error).
 */
export function checkNetworkExamples(spec: NetworkSpec, x: Float32Array, y?: LabelArray): NetworkExamples {
  const network = compileNetwork(spec);
  const width = network.table.rowLength;
  if (!(x instanceof Float32Array) || x.length === 0 || x.length % width !== 0) {
    throw new TrainingInputException(
      TrainingInputErrorCode.Features,
      `x must be a non-empty row-major Float32Array of n×${width} values`,
    );
  }
  const n = x.length / width;
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) {
      throw new TrainingInputException(
        TrainingInputErrorCode.Features,
        `x has a non-finite value at row ${Math.floor(i / width)}, column ${i % width}`,
      );
    }
  }
  const input = spec.input;
  if (input.kind === 'tabular') {
    (input.categorical ?? []).forEach((column, j) => {
      for (let row = 0; row < n; row++) {
        const code = x[row * width + input.features + j]!;
        if (!(Number.isInteger(code) && code >= 0 && code < column.levels)) {
          throw new TrainingInputException(
            TrainingInputErrorCode.Features,
            `the code of column "${column.name}" at row ${row} must be an integer in [0, ${column.levels - 1}]`,
          );
        }
      }
    });
  }
  if (y !== undefined) assertTaskLabels(y, n, network.task);
  return { network, n };
}
