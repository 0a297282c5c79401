import * as tf from '@tensorflow/tfjs';
import { smallCnnNetwork, smallResidualCnnNetwork, type NetworkSpec } from '@tessera/protocol';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from './backend-selection';
import { predictNetwork } from './network-evaluation';
import { compileNetwork } from './network-model';
import { exportNetworkTfjs } from './network-tfjs-export';
import { randomExamples, randomParameters, testNetworks } from './network.test-util';

beforeAll(async () => {
  await selectBackend('wasm');
});

/** Loads the export with tfjs-layers alone (no Tessera code) and predicts. */
async function tfjsPredict(spec: NetworkSpec, parameters: Float32Array, x: Float32Array): Promise<Float32Array> {
  const { modelJson, weightsBin } = exportNetworkTfjs(spec, parameters);
  const model = await tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: modelJson.modelTopology,
      weightSpecs: modelJson.weightsManifest[0]!.weights,
      weightData: weightsBin.buffer.slice(weightsBin.byteOffset, weightsBin.byteOffset + weightsBin.byteLength),
    }),
  );
  try {
    const width = compileNetwork(spec).table.rowLength;
    const out = model.predict(tf.tensor2d(x, [x.length / width, width])) as tf.Tensor;
    const values = out.dataSync() as Float32Array;
    out.dispose();
    return values;
  } finally {
    model.dispose();
  }
}

const networks: { name: string; spec: NetworkSpec }[] = [
  ...testNetworks(),
  {
    name: 'small CNN preset, 12×10 RGB, 4 classes',
    spec: smallCnnNetwork({ height: 12, width: 10, channels: 3, task: { kind: 'multiclass', classes: 4 } }),
  },
  {
    name: 'small residual CNN preset, 9×9 grey, binary',
    spec: smallResidualCnnNetwork({ height: 9, width: 9, channels: 1, task: { kind: 'binary' } }),
  },
  {
    name: 'scattering (J = 2, L = 4) on 28×28 grey, group norm, linear — the digits DP preset',
    spec: {
      format: 'tessera.network/1',
      input: { kind: 'image', height: 28, width: 28, channels: 1 },
      layers: [
        { id: 'scatter', kind: 'scattering', scales: 2, angles: 4 },
        { id: 'norm', kind: 'groupNorm', groups: 25 },
        { id: 'flatten', kind: 'flatten' },
        { id: 'logits', kind: 'dense', units: 10 },
      ],
      task: { kind: 'multiclass', classes: 10 },
    },
  },
  {
    name: 'a convolution with stride and dilation 2 (exported with its dilated kernel)',
    spec: {
      format: 'tessera.network/1',
      input: { kind: 'image', height: 9, width: 8, channels: 1 },
      layers: [
        { id: 'c', kind: 'conv2d', filters: 2, kernel: 2, stride: 2, dilation: 2, padding: 'same' },
        { id: 'f', kind: 'flatten' },
        { id: 'out', kind: 'dense', units: 1 },
      ],
      task: { kind: 'regression', loss: 'mse' },
    },
  },
];

describe('exportNetworkTfjs', () => {
  for (const [k, { name, spec }] of networks.entries()) {
    it(`${name}: tf.loadLayersModel gives the same predictions to 1e-5`, async () => {
      const parameters = randomParameters(spec, 40 + k);
      const { x } = randomExamples(spec, 7, 50 + k);
      const expected = await predictNetwork(spec, parameters, x);
      const actual = await tfjsPredict(spec, parameters, x);
      expect(actual).toHaveLength(expected.length);
      actual.forEach((v, i) =>
        expect(Math.abs(v - expected[i]!)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(expected[i]!))),
      );
    });
  }

  it('writes deterministic bytes and one weight entry per exported tensor', () => {
    const spec = testNetworks()[1]!.spec;
    const parameters = randomParameters(spec, 1);
    const a = exportNetworkTfjs(spec, parameters);
    const b = exportNetworkTfjs(spec, parameters);
    expect(JSON.stringify(a.modelJson)).toBe(JSON.stringify(b.modelJson));
    expect(a.weightsBin).toEqual(b.weightsBin);
    const values = a.modelJson.weightsManifest[0]!.weights.reduce((n, w) => n + w.shape.reduce((p, d) => p * d, 1), 0);
    expect(a.weightsBin.length).toBe(values * 4);
  });
});
