import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from './backend-selection';
import { clippedBatchGradients } from './dense-network';
import { denseLayers, type ModelSpec } from './model-spec';
import { initialParameters, parameterLayout } from './parameter-layout';
import { seededUniform } from './seeded-random';

/**
 * Reference: one autodiff backward pass PER EXAMPLE (tf.grads on tfjs's own cross-entropy losses), then clipping
 * and summing in plain JS. Slow by design; only for tiny models in tests.
 */
function naiveClippedSum(spec: ModelSpec, flat: Float32Array, x: Float32Array, y: number[], clipNorm: number) {
  const layers = denseLayers(spec);
  const layout = parameterLayout(spec);
  const n = y.length;
  const norms: number[] = [];
  const sum = new Float64Array(layout.size);
  const params = layout.entries.map((e) => tf.tensor(flat.slice(e.offset, e.offset + e.length), [...e.shape]));
  for (let i = 0; i < n; i++) {
    const xi = tf.tensor2d(x.slice(i * spec.inputDim, (i + 1) * spec.inputDim), [1, spec.inputDim]);
    const lossOf = (...p: tf.Tensor[]): tf.Scalar => {
      let a: tf.Tensor = xi;
      layers.forEach((layer, l) => {
        const z = tf.add(tf.matMul(a, p[2 * l] as tf.Tensor2D), p[2 * l + 1]!);
        a = layer.activation === 'relu' ? tf.relu(z) : layer.activation === 'tanh' ? tf.tanh(z) : z;
      });
      const last = layers[layers.length - 1]!;
      return last.activation === 'sigmoid'
        ? tf.losses.sigmoidCrossEntropy(tf.tensor2d([[y[i]!]]), a)
        : tf.losses.softmaxCrossEntropy(tf.oneHot([y[i]!], last.units), a);
    };
    const grads = tf.grads(lossOf)(params);
    const flatGrad = new Float64Array(layout.size);
    layout.entries.forEach((e, k) => flatGrad.set(grads[k]!.dataSync(), e.offset));
    tf.dispose([xi, ...grads]);
    const norm = Math.sqrt(flatGrad.reduce((s, g) => s + g * g, 0));
    norms.push(norm);
    const factor = Math.min(1, clipNorm / (norm + 1e-6));
    for (let k = 0; k < sum.length; k++) sum[k]! += factor * flatGrad[k]!;
  }
  tf.dispose(params);
  return { norms, sum };
}

function batch(spec: ModelSpec, n: number, classes: number, seed: number) {
  const random = seededUniform(seed);
  const x = Float32Array.from({ length: n * spec.inputDim }, () => 4 * random() - 2);
  const y = Array.from({ length: n }, () => Math.floor(random() * classes));
  return { x, y };
}

const specs: { spec: ModelSpec; classes: number }[] = [
  { spec: { kind: 'logistic-regression', inputDim: 4 }, classes: 2 },
  { spec: { kind: 'mlp', inputDim: 3, hiddenLayers: [5], activation: 'relu', task: 'binary' }, classes: 2 },
  {
    spec: { kind: 'mlp', inputDim: 4, hiddenLayers: [6, 3], activation: 'tanh', task: 'multiclass', classes: 3 },
    classes: 3,
  },
];

beforeAll(async () => {
  await selectBackend('cpu');
});

describe('ghost-norm per-example clipping', () => {
  for (const { spec, classes } of specs) {
    it(`matches a naive per-example autodiff loop: ${spec.kind} ${JSON.stringify(spec)}`, () => {
      const parameters = initialParameters(spec, 11);
      // Non-zero biases so the bias terms of the norm are exercised.
      for (const e of parameterLayout(spec).entries)
        if (e.shape.length === 1) parameters.fill(0.3, e.offset, e.offset + e.length);
      const { x, y } = batch(spec, 7, classes, 5);
      const clipNorm = 0.5;
      const fast = clippedBatchGradients(spec, parameters, x, y, clipNorm);
      const naive = naiveClippedSum(spec, parameters, x, y, clipNorm);
      fast.norms.forEach((norm, i) => expect(norm).toBeCloseTo(naive.norms[i]!, 4));
      fast.clippedSum.forEach((g, k) => expect(g).toBeCloseTo(naive.sum[k]!, 4));
      // Some examples must actually be clipped for the test to mean anything.
      expect(Array.from(fast.clipFactors).some((c) => c < 1)).toBe(true);
    });
  }

  it('never lets a clipped per-example gradient exceed C (property)', () => {
    const spec = specs[2]!.spec;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.double({ min: 0.01, max: 5, noNaN: true }), (seed, clipNorm) => {
        const parameters = initialParameters(spec, seed);
        const { x, y } = batch(spec, 5, 3, seed + 1);
        const { norms, clipFactors } = clippedBatchGradients(spec, parameters, x, y, clipNorm);
        norms.forEach((norm, i) => {
          expect(clipFactors[i]!).toBeLessThanOrEqual(1);
          expect(norm * clipFactors[i]!).toBeLessThanOrEqual(clipNorm * (1 + 1e-5));
        });
      }),
      { numRuns: 25 },
    );
  });
});
