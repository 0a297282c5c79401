import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from './backend-selection';
import { predict } from './evaluation';
import { HEART_DISEASE_SCHEMA, heartDiseaseDataDirectory } from './heart-disease.schema';
import { trainLocal } from './local-training';
import type { ModelSpec } from './model-spec';
import { exportOnnx } from './onnx-export';
import { initialParameters } from './parameter-layout';
import { prepareTabularData, type PreparedTabularData } from './tabular-data';

let data: PreparedTabularData;

beforeAll(async () => {
  await selectBackend();
  data = prepareTabularData(
    readFileSync(join(heartDiseaseDataDirectory(), 'processed.cleveland.data'), 'utf8'),
    HEART_DISEASE_SCHEMA,
  );
});

async function onnxPredict(bytes: Uint8Array, x: Float32Array, n: number, d: number): Promise<Float32Array> {
  const session = await InferenceSession.create(bytes);
  try {
    const out = await session.run({ features: new Tensor('float32', x, [n, d]) });
    return out['probability']!.data as Float32Array;
  } finally {
    await session.release();
  }
}

const specs: ModelSpec[] = [
  { kind: 'logistic-regression', inputDim: 13 },
  { kind: 'mlp', inputDim: 13, hiddenLayers: [16, 8], activation: 'relu', task: 'binary' },
  { kind: 'mlp', inputDim: 13, hiddenLayers: [10], activation: 'tanh', task: 'multiclass', classes: 3 },
];

describe('exportOnnx', () => {
  for (const spec of specs) {
    it(`runs in onnxruntime and matches the tfjs forward pass to 1e-5: ${JSON.stringify(spec)}`, async () => {
      const multiclass = spec.kind === 'mlp' && spec.task === 'multiclass';
      // Labels for the 3-class model: a deterministic function of the row, so there is something to learn.
      const y = multiclass ? Uint8Array.from(data.train.y, (v, i) => v + (i % 2)) : data.train.y;
      const trained = await trainLocal({
        spec,
        parameters: initialParameters(spec, 5),
        x: data.train.x,
        y,
        epochs: 2,
        batchSize: 16,
        learningRate: 0.1,
      });
      const bytes = exportOnnx(spec, trained.parameters);
      const expected = await predict(spec, trained.parameters, data.test.x);
      const actual = await onnxPredict(bytes, data.test.x, data.test.n, 13);
      expect(actual).toHaveLength(data.test.n * (multiclass ? 3 : 1));
      actual.forEach((p, i) => expect(Math.abs(p - expected[i]!)).toBeLessThan(1e-5));
    });
  }

  it('declares opset 13, input features [N, d] and output probability', () => {
    const model = onnx.ModelProto.decode(exportOnnx(specs[0]!, initialParameters(specs[0]!, 1)));
    expect(Number(String(model.opsetImport[0]!.version))).toBe(13);
    const graph = model.graph as onnx.GraphProto;
    expect(graph.input[0]!.name).toBe('features');
    expect(graph.output[0]!.name).toBe('probability');
    expect(graph.node.map((n) => n.opType)).toEqual(['MatMul', 'Add', 'Sigmoid']);
  });
});
