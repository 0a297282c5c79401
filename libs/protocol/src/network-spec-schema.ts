import { z } from 'zod';

/**
 * A declarative neural network: the model of a study is data, never code. The steward approves these bytes inside
 * the plan; an agent builds the network from this vetted set of layers and nothing else, so a silo never runs code the
 * hub sent. `inferNetworkShapes` (network-spec-shapes.ts) checks a spec against the limits below and computes every
 * layer's output shape and parameter count; presets (network-spec-presets.ts) give the usual networks.
 *
 * The graph is a small DAG: each layer has an `id` and reads the outputs of `inputs` — earlier layers' ids, or
 * `input` (the network input). Without `inputs` a layer reads the previous layer (the first one reads `input`), so a
 * plain sequence needs no wiring. The last layer is the output; it gives logits (binary: 1, multiclass: K) or the
 * predicted value (regression: 1), and the task applies the output nonlinearity and the loss.
 *
 * No batch normalisation, deliberately. Batch norm normalises each example with the mean and variance of the whole
 * batch, so one example's output — and therefore every other example's gradient — depends on every example in the
 * batch. DP-SGD bounds the influence of one example by clipping *that example's* gradient to C (Abadi et al. 2016);
 * with batch norm, adding or removing one record also moves the gradients of all the others, so the clipped sum's
 * sensitivity is no longer C and the privacy guarantee is void. Its running statistics are a second leak: they are
 * averages of raw activations, released with the model without noise. Group and layer norm normalise each example
 * with its own statistics, keep examples independent, and are offered instead (Wu & He 2018, "Group Normalization").
 */

/** The reserved name of the network input in `inputs`. */
export const NETWORK_INPUT = 'input';

/** Upper bounds that keep a hostile or mistaken plan from asking an agent for more than it can hold. */
export const NETWORK_LIMITS = {
  /** Layers in one spec. */
  layers: 64,
  /** Trainable float32 parameters of the whole network (200 MB of weights, per update). */
  parameters: 50_000_000,
  /** Elements of one example's input (a 1024×1024 RGB image). */
  inputElements: 1024 * 1024 * 3,
  /** Image height and width. */
  imageSide: 1024,
  /** Numeric features of a tabular input. */
  tabularFeatures: 65_536,
  /** Categorical columns of a tabular input, and levels of one column. */
  categoricalColumns: 256,
  categoricalLevels: 100_000,
  /** Elements of any one layer's output for one example (64 MiB of float32): bounds activation memory per example. */
  activationElements: 1 << 24,
  /** Units of a dense layer, filters of a convolution, width of an embedding. */
  units: 65_536,
  filters: 4_096,
  embeddingDim: 4_096,
  /** Kernel and pooling window side, stride and dilation. */
  window: 32,
  stride: 16,
  dilation: 16,
  /** Classes of a multiclass task. */
  classes: 10_000,
} as const;

const layerId = z
  .string()
  .regex(/^[a-z][a-z0-9_]{0,47}$/, 'a lower-case identifier: a letter, then letters, digits or _ (at most 48)')
  .refine((id) => id !== NETWORK_INPUT, `"${NETWORK_INPUT}" is reserved for the network input`);
const reference = z.string().min(1).max(48);
const inputs = z.array(reference).min(1).max(8);
const positiveInt = (max: number) => z.number().int().min(1).max(max);
/** A side given once (square) or as [height, width]. */
const pair = (max: number) => z.union([positiveInt(max), z.tuple([positiveInt(max), positiveInt(max)])]);
const padding = z.enum(['same', 'valid']);

/** Elementwise nonlinearities. gelu is the exact form x·Φ(x) (Hendrycks & Gimpel 2016), not the tanh approximation. */
export const ActivationFunction = z.enum(['relu', 'gelu', 'tanh', 'sigmoid']);
export type ActivationFunction = z.infer<typeof ActivationFunction>;

const base = { id: layerId, inputs: inputs.optional() };

export const DenseLayer = z
  .object({
    ...base,
    kind: z.literal('dense'),
    units: positiveInt(NETWORK_LIMITS.units),
    activation: ActivationFunction.optional(),
    /** Default true. */
    bias: z.boolean().optional(),
  })
  .strict();

/**
 * 2-D convolution over [height, width, channels] (channels last), kernel [kh, kw, in, filters]. 'same' padding pads
 * as TensorFlow does (output side ceil(side / stride), the odd pixel after); 'valid' does not pad.
 */
export const Conv2dLayer = z
  .object({
    ...base,
    kind: z.literal('conv2d'),
    filters: positiveInt(NETWORK_LIMITS.filters),
    kernel: pair(NETWORK_LIMITS.window),
    /** Default 1. */
    stride: pair(NETWORK_LIMITS.stride).optional(),
    /** Default 'valid'. */
    padding: padding.optional(),
    /** Default 1. */
    dilation: pair(NETWORK_LIMITS.dilation).optional(),
    activation: ActivationFunction.optional(),
    /** Default true. */
    bias: z.boolean().optional(),
  })
  .strict();

const pooling = {
  ...base,
  size: pair(NETWORK_LIMITS.window),
  /** Default: the window size (non-overlapping windows). */
  stride: pair(NETWORK_LIMITS.stride).optional(),
  /** Default 'valid'. Average pooling with 'same' averages the in-image pixels only. */
  padding: padding.optional(),
};
export const MaxPool2dLayer = z.object({ ...pooling, kind: z.literal('maxPool2d') }).strict();
export const AvgPool2dLayer = z.object({ ...pooling, kind: z.literal('avgPool2d') }).strict();
/** Mean over height and width: [h, w, c] → [c]. */
export const GlobalAvgPool2dLayer = z.object({ ...base, kind: z.literal('globalAvgPool2d') }).strict();
/** [h, w, c] → [h·w·c], row-major (height, then width, then channel). */
export const FlattenLayer = z.object({ ...base, kind: z.literal('flatten') }).strict();
/** Inverted dropout while training (kept units scaled by 1/(1 − rate)); the identity when predicting. */
export const DropoutLayer = z.object({ ...base, kind: z.literal('dropout'), rate: z.number().min(0).lt(1) }).strict();
/**
 * Group normalisation (Wu & He 2018): the channels are split into `groups`; each example is normalised with the mean
 * and variance of its own group (over height, width and the group's channels), then scaled and shifted per channel
 * (gamma, beta). On a vector the features are the channels.
 */
export const GroupNormLayer = z
  .object({
    ...base,
    kind: z.literal('groupNorm'),
    groups: positiveInt(NETWORK_LIMITS.filters),
    /** Added to the variance; default 1e-5. */
    epsilon: z.number().positive().max(1).optional(),
  })
  .strict();
/**
 * Layer normalisation (Ba et al. 2016) over the last axis: each feature vector (each pixel's channels on an image) is
 * normalised with its own mean and variance, then scaled and shifted per channel (gamma, beta).
 */
export const LayerNormLayer = z
  .object({ ...base, kind: z.literal('layerNorm'), epsilon: z.number().positive().max(1).optional() })
  .strict();
export const ActivationLayer = z.object({ ...base, kind: z.literal('activation'), fn: ActivationFunction }).strict();
/** Elementwise sum of inputs of one shape: the join of a residual connection (He et al. 2016). */
export const AddLayer = z.object({ ...base, kind: z.literal('add'), inputs: inputs.min(2) }).strict();
/** Concatenation along the last axis (features, or channels of images of one height and width). */
export const ConcatLayer = z.object({ ...base, kind: z.literal('concat'), inputs: inputs.min(2) }).strict();
/**
 * Embedding of one categorical column of a tabular input: level k → row k of a [levels, dim] table. It reads its
 * column directly (it takes no `inputs`); join it with the numeric features through `concat`.
 */
export const EmbeddingLayer = z
  .object({
    id: layerId,
    kind: z.literal('embedding'),
    column: z.string().min(1).max(64),
    dim: positiveInt(NETWORK_LIMITS.embeddingDim),
  })
  .strict();

/**
 * A fixed, data-independent wavelet scattering transform of the image (Mallat 2012; Bruna & Mallat 2013), with no
 * trainable parameters: DP-SGD clips and noises only the layers after it, so a private model can learn on richer
 * features without paying noise for them (Tramèr & Boneh 2021, "Differentially private learning needs better
 * features"). `scales` J, `angles` L: Morlet-like filters at L orientations, applied at J dyadic resolutions (2×2
 * averaging between them), complex modulus, then averaging over 2^J × 2^J windows. Output [⌊h/2^J⌋, ⌊w/2^J⌋,
 * c·(1 + J·L + L²·J(J − 1)/2)]: the averaged image, the first-order and the second-order coefficients. It reads the
 * network input only (nothing trainable comes before it). The filters are defined in @tessera/ml (scattering.ts).
 */
export const ScatteringLayer = z
  .object({
    ...base,
    kind: z.literal('scattering'),
    scales: z.number().int().min(1).max(4),
    angles: z.number().int().min(1).max(16),
  })
  .strict();

export const NetworkLayer = z.discriminatedUnion('kind', [
  DenseLayer,
  Conv2dLayer,
  MaxPool2dLayer,
  AvgPool2dLayer,
  GlobalAvgPool2dLayer,
  FlattenLayer,
  DropoutLayer,
  GroupNormLayer,
  LayerNormLayer,
  ActivationLayer,
  AddLayer,
  ConcatLayer,
  EmbeddingLayer,
  ScatteringLayer,
]);
export type NetworkLayer = z.infer<typeof NetworkLayer>;
export type NetworkLayerKind = NetworkLayer['kind'];

/** One categorical column of a tabular input: its codes 0..levels−1 follow the numeric features in each row. */
export const CategoricalInput = z
  .object({ name: z.string().min(1).max(64), levels: z.number().int().min(2).max(NETWORK_LIMITS.categoricalLevels) })
  .strict();

/**
 * What one example looks like. Tabular: a row of `features` numbers (the `input` of the graph) followed by one
 * integer code per categorical column (read by embedding layers only). Image: height × width × channels values,
 * channels last (1 grey, 3 RGB).
 */
export const NetworkInputSpec = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('tabular'),
      features: z.number().int().min(0).max(NETWORK_LIMITS.tabularFeatures),
      categorical: z.array(CategoricalInput).max(NETWORK_LIMITS.categoricalColumns).optional(),
    })
    .strict(),
  z
    .object({
      kind: z.literal('image'),
      height: positiveInt(NETWORK_LIMITS.imageSide),
      width: positiveInt(NETWORK_LIMITS.imageSide),
      channels: z.union([z.literal(1), z.literal(3)]),
    })
    .strict(),
]);
export type NetworkInputSpec = z.infer<typeof NetworkInputSpec>;

/**
 * The learning task. binary: one logit, sigmoid, binary cross-entropy, labels 0/1. multiclass: K logits, softmax,
 * cross-entropy, labels 0..K−1. regression: one value, squared error ('mse': (ŷ − y)² per example) or Huber with
 * threshold δ = `huberDelta` (default 1: r²/2 for |r| ≤ δ, else δ(|r| − δ/2)), whose gradient never exceeds δ.
 */
export const NetworkTask = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('binary') }).strict(),
  z.object({ kind: z.literal('multiclass'), classes: z.number().int().min(2).max(NETWORK_LIMITS.classes) }).strict(),
  z
    .object({
      kind: z.literal('regression'),
      loss: z.enum(['mse', 'huber']),
      huberDelta: z.number().positive().max(1e6).optional(),
    })
    .strict(),
]);
export type NetworkTask = z.infer<typeof NetworkTask>;

export const NetworkSpec = z
  .object({
    format: z.literal('tessera.network/1'),
    input: NetworkInputSpec,
    layers: z.array(NetworkLayer).min(1).max(NETWORK_LIMITS.layers),
    task: NetworkTask,
  })
  .strict();
export type NetworkSpec = z.infer<typeof NetworkSpec>;

/** What is wrong with a network spec. Every error names the layer (when there is one) and the field. */
export enum NetworkSpecErrorCode {
  /** The value does not have the spec's structure (zod). */
  Structure = 'STRUCTURE',
  /** A layer kind outside the vetted set, batch normalisation in particular. */
  UnsupportedLayer = 'UNSUPPORTED_LAYER',
  /** Duplicate layer id. */
  LayerId = 'LAYER_ID',
  /** An input that is unknown, later in the list, of the wrong number, or an unused layer. */
  Wiring = 'WIRING',
  /** A layer that cannot apply to the shape it receives (rank, window larger than the input, mismatched add…). */
  Shape = 'SHAPE',
  /** The output does not fit the task. */
  Output = 'OUTPUT',
  /** A limit of NETWORK_LIMITS is exceeded. */
  Limit = 'LIMIT',
}

export class NetworkSpecError extends Error {
  constructor(
    readonly code: NetworkSpecErrorCode,
    /** The offending layer's id; null for the input, the task or the whole spec. */
    readonly layerId: string | null,
    /** The offending field, e.g. 'kernel', 'inputs', 'input.height', 'layers'. */
    readonly field: string,
    message: string,
  ) {
    super(layerId === null ? `${field}: ${message}` : `layer "${layerId}", ${field}: ${message}`);
    this.name = 'NetworkSpecError';
  }
}

/** Layer kinds that mix the examples of a batch, named here so the refusal says why instead of "invalid kind". */
const BATCH_MIXING_KINDS = new Set(['batchNorm', 'batchNorm2d', 'batchNormalization', 'batch_norm', 'BatchNorm']);

/**
 * Validates an untrusted value as a network spec (structure only; inferNetworkShapes checks the graph). Throws
 * NetworkSpecError naming the layer id and field of the first problem.
 */
export function parseNetworkSpec(value: unknown): NetworkSpec {
  refuseBatchMixing(value);
  const parsed = NetworkSpec.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const path = issue.path.map(String);
  let layer: string | null = null;
  let field = path.join('.') || 'spec';
  if (path[0] === 'layers' && path.length >= 2) {
    layer = layerIdAt(value, Number(path[1])) ?? `#${path[1]}`;
    field = path.slice(2).join('.') || 'kind';
  }
  throw new NetworkSpecError(NetworkSpecErrorCode.Structure, layer, field, issue.message);
}

function refuseBatchMixing(value: unknown): void {
  const layers = (value as { layers?: unknown } | null)?.layers;
  if (!Array.isArray(layers)) return;
  layers.forEach((layer: unknown, i) => {
    const kind = (layer as { kind?: unknown } | null)?.kind;
    if (typeof kind === 'string' && BATCH_MIXING_KINDS.has(kind)) {
      throw new NetworkSpecError(
        NetworkSpecErrorCode.UnsupportedLayer,
        layerIdAt(value, i) ?? `#${i}`,
        'kind',
        'batch normalisation mixes the examples of a batch, so one record would move every other record’s clipped ' +
          'gradient and DP-SGD’s bound no longer holds; use groupNorm or layerNorm',
      );
    }
  });
}

function layerIdAt(value: unknown, index: number): string | null {
  const layers = (value as { layers?: unknown } | null)?.layers;
  if (!Array.isArray(layers)) return null;
  const id = (layers[index] as { id?: unknown } | null | undefined)?.id;
  return typeof id === 'string' && id.length <= 48 ? id : null;
}
