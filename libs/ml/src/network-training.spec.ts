import { smallCnnNetwork, smallResidualCnnNetwork, type NetworkSpec } from '@tessera/protocol';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from './backend-selection';
import { trainLocal, type LatticeNoiseSource } from './local-training';
import { TrainingInputErrorCode, TrainingInputException } from './ml.exception';
import type { ModelSpec } from './model-spec';
import { evaluateNetwork } from './network-evaluation';
import { initialNetworkParameters, networkSpecOfModelSpec } from './network-model';
import { clippedNetworkBatch, trainNetwork, type NetworkTrainingInput } from './network-training';
import { randomExamples, randomParameters, testNetworks } from './network.test-util';
import { initialParameters } from './parameter-layout';
import { seededUniform } from './seeded-random';

beforeAll(async () => {
  await selectBackend('wasm');
});

/** 8×8 grey images: a bright 3×3 square in the top half (label 1) or the bottom half (label 0), on faint noise. */
function squares(n: number, seed: number): { x: Float32Array; y: Uint8Array } {
  const random = seededUniform(seed);
  const x = Float32Array.from({ length: n * 64 }, () => 0.1 * random());
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = random() < 0.5 ? 1 : 0;
    const top = y[i] === 1 ? Math.floor(random() * 2) : 4 + Math.floor(random() * 2);
    const left = Math.floor(random() * 6);
    for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) x[i * 64 + (top + r) * 8 + left + c] = 1;
  }
  return { x, y };
}

async function codeOf(input: NetworkTrainingInput): Promise<TrainingInputErrorCode | undefined> {
  try {
    await trainNetwork(input);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(TrainingInputException);
    return (error as TrainingInputException).code;
  }
}

const cnn: NetworkSpec = smallCnnNetwork({ height: 8, width: 8, channels: 1, task: { kind: 'binary' } });

describe('trainNetwork without DP', () => {
  it('is deterministic given the seed, reports delta = new − old and learns a small image task', async () => {
    const { x, y } = squares(64, 1);
    const input: NetworkTrainingInput = {
      network: cnn,
      parameters: initialNetworkParameters(cnn, 2),
      x,
      y,
      epochs: 12,
      batchSize: 16,
      learningRate: 0.2,
      seed: 3,
    };
    const before = input.parameters.slice();
    const a = await trainNetwork(input);
    const b = await trainNetwork(input);
    expect(a.parameters).toEqual(b.parameters);
    expect(input.parameters).toEqual(before);
    a.delta.forEach((d, i) => expect(d).toBeCloseTo(a.parameters[i]! - before[i]!, 6));
    expect(a.steps).toBe(48);
    expect(a.backend).toBe('wasm');
    expect(a.lossHistory[11]!).toBeLessThan(a.lossHistory[0]! * 0.5);
    const test = squares(64, 2);
    const { metrics } = await evaluateNetwork(cnn, a.parameters, test.x, test.y);
    expect(metrics.task === 'binary' && metrics.accuracy).toBeGreaterThan(0.9);
  });

  it('trains the MLP preset exactly as trainLocal trains the registry MLP (same batches, same steps)', async () => {
    const model: ModelSpec = { kind: 'mlp', inputDim: 3, hiddenLayers: [4], activation: 'tanh', task: 'binary' };
    const random = seededUniform(5);
    const x = Float32Array.from({ length: 40 * 3 }, () => 2 * random() - 1);
    const y = Uint8Array.from({ length: 40 }, (_, i) => (x[3 * i]! + x[3 * i + 1]! > 0 ? 1 : 0));
    const common = {
      parameters: initialParameters(model, 2),
      x,
      y,
      learningRate: 0.3,
      batchSize: 8,
      epochs: 3,
      seed: 9,
    };
    const registry = await trainLocal({ ...common, spec: model });
    const network = await trainNetwork({ ...common, network: networkSpecOfModelSpec(model) });
    network.parameters.forEach((p, i) => expect(Math.abs(p - registry.parameters[i]!)).toBeLessThan(1e-5));
    expect(network.steps).toBe(registry.steps);
  });

  it('trains the residual preset and every test network, every task, to finite parameters with a falling loss', async () => {
    const residual = smallResidualCnnNetwork({ height: 8, width: 8, channels: 1, task: { kind: 'binary' } });
    const { x, y } = squares(32, 4);
    const result = await trainNetwork({
      network: residual,
      parameters: initialNetworkParameters(residual, 1),
      x,
      y,
      epochs: 3,
      batchSize: 16,
      learningRate: 0.1,
    });
    expect(result.parameters.every(Number.isFinite)).toBe(true);
    for (const [k, { spec }] of testNetworks().entries()) {
      const data = randomExamples(spec, 24, 60 + k);
      const trained = await trainNetwork({
        network: spec,
        parameters: randomParameters(spec, k, 0.1),
        ...data,
        epochs: 8,
        batchSize: 24,
        learningRate: 0.05,
      });
      expect(trained.parameters.every(Number.isFinite)).toBe(true);
      expect(trained.lossHistory[7]!).toBeLessThan(trained.lossHistory[0]!);
    }
  });
});

describe('trainNetwork with DP-SGD', () => {
  const zeroNoise: LatticeNoiseSource = (length) => new Float64Array(length);

  it('takes the step −lr · (Σ clipped gradients) / expectedBatchSize (q = 1, σ = 0: clipping only)', async () => {
    for (const { spec } of testNetworks().slice(2)) {
      const parameters = randomParameters(spec, 2);
      const { x, y } = randomExamples(spec, 10, 3);
      const clipNorm = 0.5;
      const result = await trainNetwork({
        network: spec,
        parameters,
        x,
        y,
        steps: 1,
        learningRate: 0.1,
        dp: { clipNorm, noiseMultiplier: 0, samplingRate: 1, expectedBatchSize: 8, noise: zeroNoise },
      });
      const batch = await clippedNetworkBatch(spec, parameters, x, y, clipNorm);
      result.parameters.forEach((p, i) => {
        expect(p).toBeCloseTo(parameters[i]! - (0.1 * batch.clippedSum[i]!) / 8, 6);
      });
    }
  });

  it('adds the lattice noise of the whole parameter vector each step and stays finite', async () => {
    const calls: number[] = [];
    const random = seededUniform(11);
    const noise: LatticeNoiseSource = (length) => {
      calls.push(length);
      // Small integers stand in for the discrete Gaussian here; the sampler itself is @tessera/dp's and tested there.
      return Float64Array.from({ length }, () => Math.round(4 * (random() - 0.5)));
    };
    const { x, y } = squares(40, 6);
    const result = await trainNetwork({
      network: cnn,
      parameters: initialNetworkParameters(cnn, 1),
      x,
      y,
      epochs: 1,
      learningRate: 0.1,
      dp: { clipNorm: 1, noiseMultiplier: 1.1, samplingRate: 0.25, expectedBatchSize: 10, noise },
    });
    expect(result.steps).toBe(4);
    expect(calls).toEqual(new Array(4).fill(result.parameters.length));
    expect(result.parameters.every(Number.isFinite)).toBe(true);
  });

  it('refuses a batch size under DP, bad labels and parameters of another network', async () => {
    const { x, y } = squares(8, 7);
    const base: NetworkTrainingInput = {
      network: cnn,
      parameters: initialNetworkParameters(cnn, 1),
      x,
      y,
      steps: 1,
      learningRate: 0.1,
      dp: { clipNorm: 1, noiseMultiplier: 1, samplingRate: 0.5, expectedBatchSize: 4, noise: zeroNoise },
    };
    expect(await codeOf({ ...base, batchSize: 4 })).toBe(TrainingInputErrorCode.BatchSize);
    expect(await codeOf({ ...base, y: Uint8Array.from(y, () => 3) })).toBe(TrainingInputErrorCode.Labels);
    expect(await codeOf({ ...base, parameters: new Float32Array(5) })).toBe(TrainingInputErrorCode.Parameters);
    expect(await codeOf({ ...base, dp: { ...base.dp!, clipNorm: 0 } })).toBe(TrainingInputErrorCode.ClipNorm);
  });
});
