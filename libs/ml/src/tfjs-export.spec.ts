import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from './backend-selection';
import { predict } from './evaluation';
import type { ModelSpec } from './model-spec';
import { initialParameters, parameterLayout } from './parameter-layout';
import { seededUniform } from './seeded-random';
import { exportTfjs, type TfjsExport } from './tfjs-export';

/** An in-memory IOHandler serving model.json + weights.bin, as tf.loadLayersModel would read them from files. */
function memoryHandler(exported: TfjsExport): tf.io.IOHandler {
  const [group] = exported.modelJson.weightsManifest;
  return {
    load: () =>
      Promise.resolve({
        modelTopology: exported.modelJson.modelTopology,
        format: exported.modelJson.format,
        generatedBy: exported.modelJson.generatedBy,
        weightSpecs: group!.weights,
        weightData: exported.weightsBin.slice().buffer,
      }),
  };
}

beforeAll(async () => {
  await selectBackend();
});

describe('exportTfjs', () => {
  const specs: ModelSpec[] = [
    { kind: 'logistic-regression', inputDim: 5 },
    { kind: 'mlp', inputDim: 5, hiddenLayers: [7, 4], activation: 'tanh', task: 'multiclass', classes: 3 },
  ];
  for (const spec of specs) {
    it(`loads with tf.loadLayersModel and predicts like the library: ${spec.kind}`, async () => {
      const parameters = initialParameters(spec, 3);
      const random = seededUniform(8);
      for (const e of parameterLayout(spec).entries) {
        if (e.shape.length === 1) for (let i = 0; i < e.length; i++) parameters[e.offset + i] = random() - 0.5;
      }
      const exported = exportTfjs(spec, parameters);
      expect(exported.weightsBin.byteLength).toBe(parameterLayout(spec).size * 4);
      const model = await tf.loadLayersModel(memoryHandler(exported));
      const x = Float32Array.from({ length: 6 * 5 }, () => 2 * random() - 1);
      const out = model.predict(tf.tensor2d(x, [6, 5])) as tf.Tensor;
      const actual = out.dataSync();
      const expected = await predict(spec, parameters, x);
      actual.forEach((p, i) => expect(p).toBeCloseTo(expected[i]!, 6));
      tf.dispose(out);
      model.dispose();
    });
  }

  it('is deterministic: same spec and parameters give the same JSON and bytes', () => {
    const spec = specs[1]!;
    const a = exportTfjs(spec, initialParameters(spec, 1));
    const b = exportTfjs(spec, initialParameters(spec, 1));
    expect(JSON.stringify(a.modelJson)).toBe(JSON.stringify(b.modelJson));
    expect(a.weightsBin).toEqual(b.weightsBin);
  });
});
