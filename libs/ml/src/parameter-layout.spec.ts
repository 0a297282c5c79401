import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from './backend-selection';
import { TrainingInputErrorCode, TrainingInputException } from './ml.exception';
import type { ModelSpec } from './model-spec';
import { initialParameters, parameterLayout } from './parameter-layout';
import { fromFlat, toFlat } from './parameter-tensors';

const spec: ModelSpec = {
  kind: 'mlp',
  inputDim: 6,
  hiddenLayers: [5, 4],
  activation: 'tanh',
  task: 'multiclass',
  classes: 3,
};

beforeAll(async () => {
  await selectBackend('cpu');
});

describe('parameter layout', () => {
  it('names tensors like tfjs layers: kernel then bias per dense layer', () => {
    expect(parameterLayout(spec).entries.map((e) => `${e.name}:${e.shape.join('x')}`)).toEqual([
      'dense_1/kernel:6x5',
      'dense_1/bias:5',
      'dense_2/kernel:5x4',
      'dense_2/bias:4',
      'dense_3/kernel:4x3',
      'dense_3/bias:3',
    ]);
  });

  it('initialises deterministically: Glorot-uniform kernels within ±sqrt(6/(in+out)), zero biases', () => {
    const a = initialParameters(spec, 7);
    expect(initialParameters(spec, 7)).toEqual(a);
    expect(initialParameters(spec, 8)).not.toEqual(a);
    for (const entry of parameterLayout(spec).entries) {
      const values = a.subarray(entry.offset, entry.offset + entry.length);
      if (entry.shape.length === 1) {
        expect(Array.from(values).every((v) => v === 0)).toBe(true);
      } else {
        const limit = Math.sqrt(6 / (entry.shape[0]! + entry.shape[1]!));
        expect(Math.max(...Array.from(values, Math.abs))).toBeLessThanOrEqual(limit);
        // A uniform on ±limit has variance limit²/3: the sample should not be degenerate.
        const variance = values.reduce((s, v) => s + v * v, 0) / values.length;
        expect(variance).toBeGreaterThan((limit * limit) / 3 / 4);
      }
    }
  });

  it('round-trips Float32Array → tfjs variables → Float32Array (property)', () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const flat = initialParameters(spec, seed);
        flat[flat.length - 1] = seed % 1000; // a non-zero bias too
        const variables = fromFlat(spec, flat);
        try {
          expect(variables[0]!.shape).toEqual([6, 5]);
          expect(toFlat(spec, variables)).toEqual(flat);
        } finally {
          tf.dispose(variables);
        }
      }),
      { numRuns: 20 },
    );
  });

  it('rejects parameters of the wrong length or with non-finite values', () => {
    const size = parameterLayout(spec).size;
    expect(() => fromFlat(spec, new Float32Array(size - 1))).toThrow(TrainingInputException);
    const bad = new Float32Array(size);
    bad[3] = Number.NaN;
    try {
      fromFlat(spec, bad);
      expect.unreachable();
    } catch (error) {
      expect((error as TrainingInputException).code).toBe(TrainingInputErrorCode.Parameters);
    }
  });
});
