import { mlpNetwork, smallCnnNetwork, smallResidualCnnNetwork, type NetworkSpec } from '@tessera/protocol';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from './backend-selection';
import { predictNetwork } from './network-evaluation';
import { compileNetwork } from './network-model';
import { exportNetworkOnnx } from './network-onnx-export';
import { randomExamples, randomParameters, testNetworks } from './network.test-util';

beforeAll(async () => {
  await selectBackend('wasm');
});

async function runOnnx(bytes: Uint8Array, x: Float32Array, n: number, width: number): Promise<Float32Array> {
  const session = await InferenceSession.create(bytes);
  try {
    const out = await session.run({ features: new Tensor('float32', x, [n, width]) });
    return out['output']!.data as Float32Array;
  } finally {
    await session.release();
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
    name: 'MLP preset, gelu, regression',
    spec: mlpNetwork({
      features: 6,
      hiddenLayers: [8, 4],
      activation: 'gelu',
      task: { kind: 'regression', loss: 'mse' },
    }),
  },
];

describe('exportNetworkOnnx', () => {
  for (const [k, { name, spec }] of networks.entries()) {
    it(`${name}: onnxruntime gives the tfjs predictions to 1e-4`, async () => {
      const network = compileNetwork(spec);
      const parameters = randomParameters(spec, 20 + k);
      const { x } = randomExamples(spec, 9, 30 + k);
      const expected = await predictNetwork(spec, parameters, x);
      const actual = await runOnnx(exportNetworkOnnx(spec, parameters), x, 9, network.table.rowLength);
      expect(actual).toHaveLength(expected.length);
      actual.forEach((v, i) =>
        expect(Math.abs(v - expected[i]!)).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(expected[i]!))),
      );
    });
  }

  it('declares opset 13, input features [N, row length], output [N, k], and runs convolutions channels-first', () => {
    const spec = testNetworks()[0]!.spec;
    const model = onnx.ModelProto.decode(exportNetworkOnnx(spec, randomParameters(spec, 1)));
    expect(Number(String(model.opsetImport[0]!.version))).toBe(13);
    const graph = model.graph as onnx.GraphProto;
    const dims = (v: onnx.IValueInfoProto) =>
      v.type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue));
    expect(dims(graph.input[0]!)).toEqual(['N', 6 * 6 * 3]);
    expect(dims(graph.output[0]!)).toEqual(['N', 3]);
    const kernel = graph.initializer.find((t) => t.name === 'c1/kernel')!;
    expect(kernel.dims!.map(Number)).toEqual([4, 3, 3, 3]);
    expect(graph.node.map((n) => n.opType)).toContain('Conv');
    expect(graph.node.at(-1)!.opType).toBe('Softmax');
  });

  it('refuses parameters of another network', () => {
    expect(() => exportNetworkOnnx(testNetworks()[1]!.spec, new Float32Array(3))).toThrow(/parameters must be/);
  });
});
