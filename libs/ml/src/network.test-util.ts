import type { NetworkSpec, NetworkTask } from '@tessera/protocol';
import { compileNetwork, initialNetworkParameters } from './network-model';
import { seededUniform } from './seeded-random';
import type { LabelArray } from './training-input';

/**
 * Small networks that together use every layer kind and every task, for tests that must run in seconds: each has a
 * name, a spec and the kinds it covers.
 */
export function testNetworks(): { name: string; spec: NetworkSpec }[] {
  return [
    {
      name: 'image CNN (conv same/valid/strided/dilated, ghost and materialised norms, group/layer norm, pools, residual add, concat, dropout, gelu/tanh/sigmoid/relu) — multiclass',
      spec: {
        format: 'tessera.network/1',
        input: { kind: 'image', height: 6, width: 6, channels: 3 },
        layers: [
          { id: 'c1', kind: 'conv2d', filters: 4, kernel: 3, padding: 'same', activation: 'gelu' },
          { id: 'n1', kind: 'groupNorm', groups: 2 },
          { id: 'a1', kind: 'activation', fn: 'tanh' },
          { id: 'c2', kind: 'conv2d', filters: 4, kernel: 3, padding: 'same', dilation: 2, bias: false },
          { id: 'res', kind: 'add', inputs: ['a1', 'c2'] },
          { id: 'mp', kind: 'maxPool2d', size: 2 },
          { id: 'ln', kind: 'layerNorm' },
          { id: 'c3', kind: 'conv2d', filters: 8, kernel: 2, activation: 'sigmoid' },
          { id: 'ap', kind: 'avgPool2d', size: 2, stride: 1, padding: 'same' },
          {
            id: 'c4',
            kind: 'conv2d',
            filters: 3,
            kernel: [3, 2],
            stride: 2,
            padding: 'same',
            activation: 'relu',
            inputs: ['res'],
          },
          { id: 'gp', kind: 'globalAvgPool2d', inputs: ['mp'] },
          { id: 'f1', kind: 'flatten', inputs: ['ap'] },
          { id: 'f2', kind: 'flatten', inputs: ['c4'] },
          { id: 'cat', kind: 'concat', inputs: ['f1', 'f2', 'gp'] },
          { id: 'drop', kind: 'dropout', rate: 0.3 },
          { id: 'h', kind: 'dense', units: 5, activation: 'relu' },
          { id: 'out', kind: 'dense', units: 3 },
        ],
        task: { kind: 'multiclass', classes: 3 },
      },
    },
    {
      name: 'tabular with embeddings (concat, layer norm, group norm on a vector, dropout, gelu) — binary',
      spec: {
        format: 'tessera.network/1',
        input: {
          kind: 'tabular',
          features: 4,
          categorical: [
            { name: 'a', levels: 3 },
            { name: 'b', levels: 5 },
          ],
        },
        layers: [
          { id: 'ea', kind: 'embedding', column: 'a', dim: 2 },
          { id: 'eb', kind: 'embedding', column: 'b', dim: 3 },
          { id: 'cat', kind: 'concat', inputs: ['input', 'ea', 'eb'] },
          { id: 'ln', kind: 'layerNorm' },
          { id: 'h', kind: 'dense', units: 6, activation: 'gelu' },
          { id: 'gn', kind: 'groupNorm', groups: 3 },
          { id: 'drop', kind: 'dropout', rate: 0.2 },
          { id: 'out', kind: 'dense', units: 1 },
        ],
        task: { kind: 'binary' },
      },
    },
    {
      name: 'MLP without a bias (sigmoid, tanh) — regression, squared error',
      spec: {
        format: 'tessera.network/1',
        input: { kind: 'tabular', features: 5 },
        layers: [
          { id: 'h1', kind: 'dense', units: 4, activation: 'sigmoid' },
          { id: 'h2', kind: 'dense', units: 3, activation: 'tanh', bias: false },
          { id: 'out', kind: 'dense', units: 1 },
        ],
        task: { kind: 'regression', loss: 'mse' },
      },
    },
    {
      name: 'small CNN on a grey image (valid conv, valid average pool) — regression, Huber',
      spec: {
        format: 'tessera.network/1',
        input: { kind: 'image', height: 7, width: 7, channels: 1 },
        layers: [
          { id: 'c', kind: 'conv2d', filters: 3, kernel: 3, stride: 2, activation: 'relu' },
          { id: 'p', kind: 'avgPool2d', size: 2 },
          { id: 'f', kind: 'flatten' },
          { id: 'out', kind: 'dense', units: 1 },
        ],
        task: { kind: 'regression', loss: 'huber', huberDelta: 0.5 },
      },
    },
    {
      name: 'fixed scattering features (J = 2, L = 3) on RGB, group norm, tanh conv — binary',
      spec: {
        format: 'tessera.network/1',
        input: { kind: 'image', height: 9, width: 8, channels: 3 },
        layers: [
          { id: 's', kind: 'scattering', scales: 2, angles: 3 },
          { id: 'n', kind: 'groupNorm', groups: 6 },
          { id: 'c', kind: 'conv2d', filters: 2, kernel: 2, padding: 'same', activation: 'tanh' },
          { id: 'f', kind: 'flatten' },
          { id: 'out', kind: 'dense', units: 1 },
        ],
        task: { kind: 'binary' },
      },
    },
  ];
}

/**
 * Initial parameters plus seeded uniform perturbations of ±`spread` on every value (gamma and beta too, so that the
 * normalisation layers' gradients are not trivial).
 */
export function randomParameters(spec: NetworkSpec, seed: number, spread = 0.3): Float32Array {
  const params = initialNetworkParameters(spec, seed);
  const random = seededUniform(seed + 1000);
  for (let i = 0; i < params.length; i++) params[i] = params[i]! + (2 * random() - 1) * spread;
  return params;
}

/** n random data rows (codes drawn within their levels) and labels of the task. */
export function randomExamples(spec: NetworkSpec, n: number, seed: number): { x: Float32Array; y: LabelArray } {
  const network = compileNetwork(spec);
  const width = network.table.rowLength;
  const random = seededUniform(seed);
  const x = Float32Array.from({ length: n * width }, () => 2 * random() - 1);
  if (spec.input.kind === 'tabular') {
    const { features } = spec.input;
    (spec.input.categorical ?? []).forEach((column, j) => {
      for (let row = 0; row < n; row++) x[row * width + features + j] = Math.floor(random() * column.levels);
    });
  }
  return { x, y: randomLabels(spec.task, n, random) };
}

function randomLabels(task: NetworkTask, n: number, random: () => number): LabelArray {
  switch (task.kind) {
    case 'binary':
      return Uint8Array.from({ length: n }, () => (random() < 0.5 ? 1 : 0));
    case 'multiclass':
      return Uint8Array.from({ length: n }, () => Math.floor(random() * task.classes));
    case 'regression':
      return Float32Array.from({ length: n }, () => 3 * (2 * random() - 1));
  }
}
