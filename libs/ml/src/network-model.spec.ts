import { smallCnnNetwork, type NetworkSpec } from '@tessera/protocol';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from './backend-selection';
import { predict } from './evaluation';
import { TrainingInputErrorCode, TrainingInputException } from './ml.exception';
import type { ModelSpec } from './model-spec';
import { checkNetworkExamples } from './network-data';
import { evaluateNetwork, predictNetwork } from './network-evaluation';
import {
  assertNetworkParameters,
  compileNetwork,
  initialNetworkParameters,
  networkParameterLayout,
  networkSpecOfModelSpec,
} from './network-model';
import { randomExamples, randomParameters, testNetworks } from './network.test-util';
import { initialParameters, parameterLayout } from './parameter-layout';
import { seededUniform } from './seeded-random';

beforeAll(async () => {
  await selectBackend('wasm');
});

const registry: ModelSpec[] = [
  { kind: 'logistic-regression', inputDim: 13 },
  { kind: 'mlp', inputDim: 13, hiddenLayers: [16, 8], activation: 'relu', task: 'binary' },
  { kind: 'mlp', inputDim: 7, hiddenLayers: [10], activation: 'tanh', task: 'multiclass', classes: 4 },
];

function codeOf(action: () => unknown): TrainingInputErrorCode | undefined {
  try {
    action();
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(TrainingInputException);
    return (error as TrainingInputException).code;
  }
}

describe('registry models as network presets: existing studies map byte for byte', () => {
  for (const model of registry) {
    it(`${JSON.stringify(model)}: same layout, same initial bytes, same predictions`, async () => {
      const spec = networkSpecOfModelSpec(model);
      expect(networkParameterLayout(spec)).toEqual(parameterLayout(model));
      const parameters = initialParameters(model, 7);
      expect(initialNetworkParameters(spec, 7)).toEqual(parameters);
      // Non-zero biases too, so that the comparison covers every weight.
      const random = seededUniform(8);
      const perturbed = parameters.map((v) => v + (random() - 0.5) * 0.2);
      const random2 = seededUniform(9);
      const x = Float32Array.from({ length: 20 * model.inputDim }, () => 2 * random2() - 1);
      const ours = await predictNetwork(spec, perturbed, x);
      const theirs = await predict(model, perturbed, x);
      expect(ours).toHaveLength(theirs.length);
      ours.forEach((p, i) => expect(Math.abs(p - theirs[i]!)).toBeLessThan(1e-6));
    });
  }
});

describe('network parameters', () => {
  const cnn: NetworkSpec = smallCnnNetwork({ height: 8, width: 8, channels: 1, task: { kind: 'binary' } });

  it('initialises kernels Glorot-uniform, biases and beta at 0, gamma at 1, embeddings within ±0.05', () => {
    const spec = testNetworks()[0]!.spec;
    const { layout } = compileNetwork(spec);
    const params = initialNetworkParameters(spec, 3);
    for (const entry of layout.entries) {
      const values = Array.from(params.subarray(entry.offset, entry.offset + entry.length));
      const role = entry.name.split('/')[1];
      if (role === 'kernel') {
        const receptive = entry.shape.slice(0, -2).reduce((a, b) => a * b, 1);
        const limit = Math.sqrt(6 / (receptive * (entry.shape.at(-2)! + entry.shape.at(-1)!)));
        expect(Math.max(...values.map(Math.abs))).toBeLessThanOrEqual(limit);
        expect(Math.max(...values.map(Math.abs))).toBeGreaterThan(limit / 2);
      } else {
        expect(new Set(values)).toEqual(new Set([role === 'gamma' ? 1 : 0]));
      }
    }
    const tabular = testNetworks()[1]!.spec;
    const table = compileNetwork(tabular).layout.entries.find((e) => e.name === 'ea/embeddings')!;
    const embedding = initialNetworkParameters(tabular, 1).subarray(table.offset, table.offset + table.length);
    expect(Math.max(...Array.from(embedding, Math.abs))).toBeLessThanOrEqual(0.05);
    expect(initialNetworkParameters(cnn, 5)).toEqual(initialNetworkParameters(cnn, 5));
    expect(initialNetworkParameters(cnn, 5)).not.toEqual(initialNetworkParameters(cnn, 6));
  });

  it('refuses parameters of the wrong length or with a non-finite value', () => {
    const network = compileNetwork(cnn);
    expect(codeOf(() => assertNetworkParameters(network, new Float32Array(3)))).toBe(TrainingInputErrorCode.Parameters);
    const bad = initialNetworkParameters(cnn, 1);
    bad[10] = Number.NaN;
    expect(codeOf(() => assertNetworkParameters(network, bad))).toBe(TrainingInputErrorCode.Parameters);
  });

  it('refuses data that does not fit the network, naming row and column but never a value', () => {
    const tabular = testNetworks()[1]!.spec;
    const { x, y } = randomExamples(tabular, 4, 1);
    expect(checkNetworkExamples(tabular, x, y).n).toBe(4);
    expect(codeOf(() => checkNetworkExamples(tabular, x.subarray(0, 7), y))).toBe(TrainingInputErrorCode.Features);
    const outOfRange = x.slice();
    outOfRange[6 + 5] = 5; // row 1, column b: 5 levels, codes 0..4
    expect(() => checkNetworkExamples(tabular, outOfRange, y)).toThrow(/column "b" at row 1 .* \[0, 4\]/);
    const fractional = x.slice();
    fractional[4] = 0.5;
    expect(codeOf(() => checkNetworkExamples(tabular, fractional, y))).toBe(TrainingInputErrorCode.Features);
    expect(codeOf(() => checkNetworkExamples(tabular, x, Uint8Array.of(0, 1, 2, 0)))).toBe(
      TrainingInputErrorCode.Labels,
    );
    const regression = testNetworks()[2]!.spec;
    const data = randomExamples(regression, 3, 2);
    expect(codeOf(() => checkNetworkExamples(regression, data.x, Float32Array.of(0.5, Number.NaN, 1)))).toBe(
      TrainingInputErrorCode.Labels,
    );
  });
});

describe('evaluateNetwork', () => {
  it('reports the task loss and the metrics of the predictions: regression loss is the mean squared error', async () => {
    const spec = testNetworks()[2]!.spec;
    const params = randomParameters(spec, 4);
    const { x, y } = randomExamples(spec, 30, 5);
    const { loss, metrics } = await evaluateNetwork(spec, params, x, y);
    const predictions = await predictNetwork(spec, params, x);
    expect(metrics.task).toBe('regression');
    if (metrics.task !== 'regression') return;
    expect(metrics.n).toBe(30);
    expect(loss).toBeCloseTo(metrics.rmse ** 2, 5);
    const mae = Array.from(predictions, (p, i) => Math.abs(p - y[i]!)).reduce((a, b) => a + b, 0) / 30;
    expect(metrics.mae).toBeCloseTo(mae, 6);
  });

  it('gives class probabilities that sum to 1 and the multiclass metrics', async () => {
    const spec = testNetworks()[0]!.spec;
    const params = randomParameters(spec, 6);
    const { x, y } = randomExamples(spec, 12, 7);
    const predictions = await predictNetwork(spec, params, x);
    for (let i = 0; i < 12; i++) {
      expect(predictions[3 * i]! + predictions[3 * i + 1]! + predictions[3 * i + 2]!).toBeCloseTo(1, 5);
    }
    const { metrics } = await evaluateNetwork(spec, params, x, y);
    expect(metrics.task).toBe('multiclass');
    if (metrics.task !== 'multiclass') return;
    expect(metrics.confusionMatrix.flat().reduce((a, b) => a + b, 0)).toBe(12);
  });
});
