import * as tf from '@tensorflow/tfjs';
import type { NetworkSpec } from '@tessera/protocol';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from './backend-selection';
import type { LatticeNoiseSource } from './local-training';
import { TrainingInputErrorCode, TrainingInputException } from './ml.exception';
import { predictNetwork } from './network-evaluation';
import { checkFixedFeatures, fixedFeatures, fixedFrontOf } from './network-fixed-features';
import { compileNetwork, initialNetworkParameters } from './network-model';
import { trainNetwork, type NetworkTrainingInput } from './network-training';
import { scatteringTransform } from './scattering';
import { seededUniform } from './seeded-random';

beforeAll(async () => {
  await selectBackend('wasm');
});

/** The digits DP preset's layers (scattering J = 2, L = 4, group norm per map, linear) on smaller images. */
function scatteringHead(side: number): NetworkSpec {
  return {
    format: 'tessera.network/1',
    input: { kind: 'image', height: side, width: side, channels: 1 },
    layers: [
      { id: 'scatter', kind: 'scattering', scales: 2, angles: 4 },
      { id: 'norm', kind: 'groupNorm', groups: 25 },
      { id: 'flatten', kind: 'flatten' },
      { id: 'logits', kind: 'dense', units: 10 },
    ],
    task: { kind: 'multiclass', classes: 10 },
  };
}

/** n grey images with a bright stroke whose row depends on the label, on noise; labels 0–9. */
function strokes(n: number, side: number, seed: number): { x: Float32Array; y: Int32Array } {
  const random = seededUniform(seed);
  const x = Float32Array.from({ length: n * side * side }, () => 0.2 * random());
  const y = Int32Array.from({ length: n }, () => Math.floor(random() * 10));
  for (let i = 0; i < n; i++) {
    const row = Math.min(side - 1, Math.floor(((y[i]! + 0.5) * side) / 10));
    for (let c = 2; c < side - 2; c++) x[i * side * side + row * side + c] = 1;
  }
  return { x, y };
}

/** A deterministic stand-in for the discrete Gaussian: the same integers for the same seed and call order. */
function seededNoise(seed: number): LatticeNoiseSource {
  const random = seededUniform(seed);
  return (length) => Float64Array.from({ length }, () => Math.round(6 * (random() - 0.5)));
}

describe('the fixed front of a network', () => {
  it('is a first scattering layer that nothing after it bypasses', () => {
    const front = fixedFrontOf(compileNetwork(scatteringHead(16)));
    expect(front).toMatchObject({ layerId: 'scatter', layerCount: 1, outputShape: [4, 4, 25], rowLength: 400 });
    const other = fixedFrontOf(compileNetwork(scatteringHead(28)));
    expect(other?.key).not.toBe(front?.key);

    const conv: NetworkSpec = {
      ...scatteringHead(16),
      layers: [
        { id: 'conv', kind: 'conv2d', filters: 2, kernel: 3 },
        { id: 'flatten', kind: 'flatten' },
        { id: 'logits', kind: 'dense', units: 10 },
      ],
    };
    expect(fixedFrontOf(compileNetwork(conv))).toBeNull();
    const bypass: NetworkSpec = {
      ...scatteringHead(16),
      layers: [
        { id: 'scatter', kind: 'scattering', scales: 2, angles: 4 },
        { id: 'flat_s', kind: 'flatten' },
        { id: 'flat_x', kind: 'flatten', inputs: ['input'] },
        { id: 'both', kind: 'concat', inputs: ['flat_s', 'flat_x'] },
        { id: 'logits', kind: 'dense', units: 10 },
      ],
    };
    expect(fixedFrontOf(compileNetwork(bypass))).toBeNull();
  });

  it('gives, in chunks, the features the forward pass computes on any batch, bit for bit', async () => {
    const spec = scatteringHead(16);
    const { x } = strokes(300, 16, 1);
    const features = await fixedFeatures(spec, x);
    expect(features.length).toBe(300 * 400);
    // Batches of other sizes and compositions, as Poisson sampling draws them at every step.
    for (const rows of [[0], [5, 17, 299, 3], Array.from({ length: 57 }, (_, k) => (k * 37) % 300)]) {
      const batch = new Float32Array(rows.length * 256);
      rows.forEach((r, k) => batch.set(x.subarray(r * 256, (r + 1) * 256), k * 256));
      const direct = tf.tidy(() => scatteringTransform(tf.tensor4d(batch, [rows.length, 16, 16, 1]), 2, 4));
      const values = direct.dataSync() as Float32Array;
      direct.dispose();
      rows.forEach((r, k) => {
        expect(Buffer.from(values.buffer, k * 1600, 1600)).toEqual(Buffer.from(features.buffer, r * 1600, 1600));
      });
    }
  }, 60_000);

  it('trains from the features to the same bytes as from the images, with DP-SGD and without', async () => {
    const spec = scatteringHead(16);
    const { x, y } = strokes(120, 16, 2);
    const features = await fixedFeatures(spec, x);
    const parameters = initialNetworkParameters(spec, 3);
    const dpInput = (): Omit<NetworkTrainingInput, 'x'> => ({
      network: spec,
      parameters,
      y,
      epochs: 2,
      learningRate: 0.5,
      seed: 4,
      dp: { clipNorm: 1, noiseMultiplier: 1.1, samplingRate: 0.2, expectedBatchSize: 24, noise: seededNoise(5) },
    });
    const fromImages = await trainNetwork({ ...dpInput(), x });
    const fromFeatures = await trainNetwork({ ...dpInput(), x: features, rows: 'fixed-features' });
    expect(fromImages.steps).toBe(10);
    expect(fromFeatures.steps).toBe(10);
    expect(Buffer.from(fromFeatures.parameters.buffer)).toEqual(Buffer.from(fromImages.parameters.buffer));
    expect(fromFeatures.lossHistory).toEqual(fromImages.lossHistory);
    expect(fromFeatures.examplesUsed).toBe(fromImages.examplesUsed);
    // Training moved the head: the comparison is not of two untouched copies.
    expect(fromImages.delta.some((d) => d !== 0)).toBe(true);

    const plain = { network: spec, parameters, y, epochs: 2, batchSize: 16, learningRate: 0.3, seed: 6 };
    const plainImages = await trainNetwork({ ...plain, x });
    const plainFeatures = await trainNetwork({ ...plain, x: features, rows: 'fixed-features' });
    expect(Buffer.from(plainFeatures.parameters.buffer)).toEqual(Buffer.from(plainImages.parameters.buffer));

    const predicted = await predictNetwork(spec, fromImages.parameters, x);
    const fromFeaturesPredicted = await predictNetwork(spec, fromImages.parameters, features, 'fixed-features');
    expect(Buffer.from(fromFeaturesPredicted.buffer)).toEqual(Buffer.from(predicted.buffer));
  }, 60_000);

  it('refuses features of the wrong width, non-finite features, and features for a network without a front', async () => {
    const spec = scatteringHead(16);
    const refusal = (f: () => unknown): TrainingInputErrorCode | undefined => {
      try {
        f();
        return undefined;
      } catch (error) {
        expect(error).toBeInstanceOf(TrainingInputException);
        return (error as TrainingInputException).code;
      }
    };
    expect(refusal(() => checkFixedFeatures(spec, new Float32Array(399)))).toBe(TrainingInputErrorCode.Features);
    const nan = new Float32Array(400);
    nan[7] = Number.NaN;
    expect(refusal(() => checkFixedFeatures(spec, nan))).toBe(TrainingInputErrorCode.Features);
    const dense: NetworkSpec = {
      format: 'tessera.network/1',
      input: { kind: 'tabular', features: 4 },
      layers: [{ id: 'logits', kind: 'dense', units: 1 }],
      task: { kind: 'binary' },
    };
    expect(refusal(() => checkFixedFeatures(dense, new Float32Array(4)))).toBe(TrainingInputErrorCode.Features);
    await expect(fixedFeatures(dense, new Float32Array(4))).rejects.toThrow(/no fixed front/);
  });
});
