import type { NetworkLayer, NetworkSpec, NetworkTask } from './network-spec-schema';

/**
 * Ready-made networks, the choices a study designer starts from. Each returns a plain NetworkSpec (the plan carries
 * the spec, never the preset's name), so a preset and the same layers written by hand are the same plan.
 */

/** The task of the classification presets (regression takes any preset's layers with a one-unit output). */
type PresetTask = NetworkTask;

const outputWidth = (task: PresetTask): number => (task.kind === 'multiclass' ? task.classes : 1);

/**
 * Logistic regression on `features` numeric inputs: one dense unit, sigmoid applied by the binary task. Its flat
 * parameters are `dense_1/kernel` [features, 1] then `dense_1/bias` [1] — the layout of the registry's
 * 'logistic-regression' (@tessera/ml parameterLayout), so an existing study's parameters carry over unchanged.
 */
export function logisticRegressionNetwork(features: number): NetworkSpec {
  return {
    format: 'tessera.network/1',
    input: { kind: 'tabular', features },
    layers: [{ id: 'dense_1', kind: 'dense', units: 1 }],
    task: { kind: 'binary' },
  };
}

export interface MlpPresetOptions {
  readonly features: number;
  readonly hiddenLayers: readonly number[];
  readonly activation: 'relu' | 'gelu' | 'tanh' | 'sigmoid';
  readonly task: PresetTask;
}

/**
 * Multi-layer perceptron: dense layers `dense_1`..`dense_L` with the activation, then `dense_{L+1}` giving the
 * task's logits. With relu or tanh and a binary or multiclass task this is exactly the registry's 'mlp' (@tessera/ml
 * model-spec): same layers, same weight names, same flat layout (kernel then bias per layer, input to output).
 */
export function mlpNetwork(options: MlpPresetOptions): NetworkSpec {
  const layers: NetworkLayer[] = options.hiddenLayers.map((units, i) => ({
    id: `dense_${i + 1}`,
    kind: 'dense',
    units,
    activation: options.activation,
  }));
  layers.push({ id: `dense_${layers.length + 1}`, kind: 'dense', units: outputWidth(options.task) });
  return {
    format: 'tessera.network/1',
    input: { kind: 'tabular', features: options.features },
    layers,
    task: options.task,
  };
}

export interface ImagePresetOptions {
  readonly height: number;
  readonly width: number;
  readonly channels: 1 | 3;
  readonly task: PresetTask;
}

/**
 * A small CNN for small images (28×28 digits and the like): two 3×3 'same' convolutions (16 and 32 filters, relu,
 * unless `filters` says otherwise), each followed by 2×2 max pooling, then a dense layer of 64 and the logits. About
 * 106,000 parameters on 28×28×1 with the default filters.
 */
export function smallCnnNetwork(
  options: ImagePresetOptions & { readonly filters?: readonly [number, number] },
): NetworkSpec {
  const [first, second] = options.filters ?? [16, 32];
  return {
    format: 'tessera.network/1',
    input: { kind: 'image', height: options.height, width: options.width, channels: options.channels },
    layers: [
      { id: 'conv_1', kind: 'conv2d', filters: first, kernel: 3, padding: 'same', activation: 'relu' },
      { id: 'pool_1', kind: 'maxPool2d', size: 2 },
      { id: 'conv_2', kind: 'conv2d', filters: second, kernel: 3, padding: 'same', activation: 'relu' },
      { id: 'pool_2', kind: 'maxPool2d', size: 2 },
      { id: 'flatten', kind: 'flatten' },
      { id: 'dense_1', kind: 'dense', units: 64, activation: 'relu' },
      { id: 'logits', kind: 'dense', units: outputWidth(options.task) },
    ],
    task: options.task,
  };
}

/** conv (no bias: the norm's beta shifts) → group norm → relu, the unit of the residual preset. */
function convNormRelu(prefix: string, filters: number, stride: number, input: string): NetworkLayer[] {
  return [
    { id: `${prefix}_conv`, kind: 'conv2d', inputs: [input], filters, kernel: 3, stride, padding: 'same', bias: false },
    { id: `${prefix}_norm`, kind: 'groupNorm', groups: 4 },
    { id: `${prefix}_relu`, kind: 'activation', fn: 'relu' },
  ];
}

/** Two conv-norm units whose output is added to the block's input (He et al. 2016, "identity shortcut"). */
function residualBlock(prefix: string, filters: number, input: string): NetworkLayer[] {
  return [
    ...convNormRelu(`${prefix}_a`, filters, 1, input),
    { id: `${prefix}_b_conv`, kind: 'conv2d', filters, kernel: 3, padding: 'same', bias: false },
    { id: `${prefix}_b_norm`, kind: 'groupNorm', groups: 4 },
    { id: `${prefix}_add`, kind: 'add', inputs: [input, `${prefix}_b_norm`] },
    { id: `${prefix}_relu`, kind: 'activation', fn: 'relu' },
  ];
}

/**
 * A small residual CNN: a 16-filter stem, a residual block, a stride-2 convolution to 32 filters, a second residual
 * block, global average pooling and the logits; group norm (4 groups) throughout, never batch norm (DP-SGD). About
 * 33,000 parameters whatever the image size.
 */
export function smallResidualCnnNetwork(options: ImagePresetOptions): NetworkSpec {
  return {
    format: 'tessera.network/1',
    input: { kind: 'image', height: options.height, width: options.width, channels: options.channels },
    layers: [
      ...convNormRelu('stem', 16, 1, 'input'),
      ...residualBlock('block_1', 16, 'stem_relu'),
      ...convNormRelu('down', 32, 2, 'block_1_relu'),
      ...residualBlock('block_2', 32, 'down_relu'),
      { id: 'pool', kind: 'globalAvgPool2d' },
      { id: 'logits', kind: 'dense', units: outputWidth(options.task) },
    ],
    task: options.task,
  };
}
