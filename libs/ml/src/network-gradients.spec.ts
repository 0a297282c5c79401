import * as tf from '@tensorflow/tfjs';
import type { NetworkSpec } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import { selectBackend } from './backend-selection';
import { dropoutMasks, forwardNetwork } from './network-forward';
import { gradientSum } from './network-gradients';
import { perExampleTaskLoss, targetWidth, writeTargets } from './network-loss';
import { compileNetwork } from './network-model';
import {
  clippedNetworkBatch,
  NETWORK_CLIP_MARGIN,
  networkWeightsFromFlat,
  networkWeightsToFlat,
} from './network-training';
import { randomExamples, randomParameters, testNetworks } from './network.test-util';
import type { LabelArray } from './training-input';

const N = 6;
const DROPOUT_SEED = 17;

/**
 * The reference: one autodiff pass per example on the cpu backend, through tfjs's own gradients of every op
 * (tf.conv2d's Conv2DBackpropFilter on the dilated kernel, tf.gather's segment sum) — none of the custom gradients or
 * closed forms under test. Dropout uses row i of the batch's masks. Returns each example's flat gradient.
 */
async function perExampleReference(spec: NetworkSpec, params: Float32Array, x: Float32Array, y: LabelArray) {
  await selectBackend('cpu');
  const network = compileNetwork(spec);
  const width = network.table.rowLength;
  const outputs = targetWidth(network.task);
  const targets = new Float32Array(N * outputs);
  writeTargets(y, network.task, targets);
  const weights = networkWeightsFromFlat(network, params);
  const masks = dropoutMasks(network, N, DROPOUT_SEED);
  const gradients: Float64Array[] = [];
  for (let i = 0; i < N; i++) {
    const grads = tf.tidy(() => {
      const rowMasks = new Map([...masks].map(([id, m]) => [id, tf.slice(m, i, 1)]));
      const xi = tf.tensor2d(x.subarray(i * width, (i + 1) * width), [1, width]);
      const ti = tf.tensor2d(targets.subarray(i * outputs, (i + 1) * outputs), [1, outputs]);
      return tf.grads((...ws: tf.Tensor[]) =>
        tf.sum(
          perExampleTaskLoss(
            forwardNetwork(network, ws, xi, { target: 'none', dropoutMasks: rowMasks }),
            ti,
            network.task,
          ),
        ),
      )(weights);
    });
    gradients.push(Float64Array.from(networkWeightsToFlat(network, grads)));
    tf.dispose(grads);
  }
  tf.dispose([...weights, ...masks.values()]);
  return gradients;
}

const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, a) => s + a * a, 0));

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, relative: number): void {
  expect(actual.length).toBe(expected.length);
  const scale = Math.max(...Array.from(expected, Math.abs));
  const worst = Math.max(...Array.from(actual, (a, i) => Math.abs(a - expected[i]!)));
  expect(worst).toBeLessThanOrEqual(relative * scale);
}

// Per-example gradient norms by closed forms on the wasm backend (the agent's), against one autodiff pass per example.
describe('DP-SGD per-example gradients of declarative networks (wasm backend)', () => {
  for (const [k, { name, spec }] of testNetworks().entries()) {
    it(`${name}: norms to 1e-4 relative, every clipped gradient ≤ C, clipped sum = Σ c_i·g_i`, async () => {
      const params = randomParameters(spec, 3 + k);
      const { x, y } = randomExamples(spec, N, 40 + k);
      const reference = await perExampleReference(spec, params, x, y);
      const referenceNorms = reference.map(norm);
      // Half the examples are clipped: C is the median norm.
      const clipNorm = [...referenceNorms].sort((a, b) => a - b)[N / 2]!;

      expect(await selectBackend('wasm')).toBe('wasm');
      const ours = await clippedNetworkBatch(spec, params, x, y, clipNorm, DROPOUT_SEED);
      referenceNorms.forEach((r, i) => {
        expect(r).toBeGreaterThan(0);
        expect(Math.abs(ours.norms[i]! - r) / r).toBeLessThan(1e-4);
      });
      const clipped = reference.map((g, i) => g.map((v) => v * ours.clipFactors[i]!));
      for (const g of clipped) expect(norm(g)).toBeLessThanOrEqual(clipNorm);
      // The examples above C land (within the margin) on C; the others keep their gradient.
      expect(clipped.filter((g) => norm(g) > clipNorm * (1 - 2 * NETWORK_CLIP_MARGIN)).length).toBeGreaterThan(0);
      expect(Array.from(ours.clipFactors).filter((c) => c === 1).length).toBeGreaterThan(0);
      const expectedSum = clipped.reduce((sum, g) => sum.map((v, j) => v + g[j]!), new Float64Array(params.length));
      expectClose(ours.clippedSum, expectedSum, 1e-4);
    });
  }

  it('the plain (non-private) gradient sum equals the sum of the per-example gradients, every network', async () => {
    for (const [k, { spec }] of testNetworks().entries()) {
      const params = randomParameters(spec, 3 + k);
      const { x, y } = randomExamples(spec, N, 40 + k);
      const reference = await perExampleReference(spec, params, x, y);
      await selectBackend('wasm');
      const network = compileNetwork(spec);
      const outputs = targetWidth(network.task);
      const targets = new Float32Array(N * outputs);
      writeTargets(y, network.task, targets);
      const weights = networkWeightsFromFlat(network, params);
      const sums = tf.tidy(() => {
        const masks = dropoutMasks(network, N, DROPOUT_SEED);
        const xb = tf.tensor2d(x, [N, network.table.rowLength]);
        return gradientSum(network, weights, xb, tf.tensor2d(targets, [N, outputs]), masks).sums;
      });
      const expected = reference.reduce((sum, g) => sum.map((v, j) => v + g[j]!), new Float64Array(params.length));
      expectClose(networkWeightsToFlat(network, sums), expected, 1e-4);
      tf.dispose([...sums, ...weights]);
    }
  });

  it('an embedding table’s clipped sum accumulates examples that share a level', async () => {
    const spec = testNetworks()[1]!.spec;
    const params = randomParameters(spec, 9);
    const { x, y } = randomExamples(spec, N, 50);
    // Every example has level 2 of column a (column 4 of the row): the six contributions land in one row.
    for (let i = 0; i < N; i++) x[i * 6 + 4] = 2;
    const reference = await perExampleReference(spec, params, x, y);
    await selectBackend('wasm');
    const ours = await clippedNetworkBatch(spec, params, x, y, 1e6, DROPOUT_SEED);
    expect(Array.from(ours.clipFactors)).toEqual(new Array(N).fill(1));
    const expected = reference.reduce((sum, g) => sum.map((v, j) => v + g[j]!), new Float64Array(params.length));
    expectClose(ours.clippedSum, expected, 1e-4);
  });
});
