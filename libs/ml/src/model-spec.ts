import { ModelSpecErrorCode, ModelSpecException } from './ml.exception';

/** Hidden-layer nonlinearity of an MLP. */
export type HiddenActivation = 'relu' | 'tanh';

/** Binary: one sigmoid output, labels 0/1. Multi-class: softmax over `classes` outputs, labels 0..classes-1. */
export type ModelTask = 'binary' | 'multiclass';

/** Logistic regression: d inputs → 1 sigmoid output, binary cross-entropy. */
export interface LogisticRegressionSpec {
  readonly kind: 'logistic-regression';
  readonly inputDim: number;
}

/** Multi-layer perceptron: dense hidden layers with one activation, sigmoid (binary) or softmax output. */
export interface MlpSpec {
  readonly kind: 'mlp';
  readonly inputDim: number;
  readonly hiddenLayers: readonly number[];
  readonly activation: HiddenActivation;
  readonly task: ModelTask;
  /** Number of classes; required for 'multiclass' (at least 2), must be absent or 2 for 'binary'. */
  readonly classes?: number;
}

/** An architecture from the registry with its hyperparameters, as a study plan carries it. */
export type ModelSpec = LogisticRegressionSpec | MlpSpec;

/** Architectures the registry knows. */
export const MODEL_ARCHITECTURES = ['logistic-regression', 'mlp'] as const;
export type ModelArchitecture = (typeof MODEL_ARCHITECTURES)[number];

/** One dense layer of the network a spec describes: y = act(x·W + b), W of shape [inputs, units]. */
export interface DenseLayerShape {
  readonly inputs: number;
  readonly units: number;
  readonly activation: HiddenActivation | 'sigmoid' | 'softmax';
}

/** Upper bounds keep a hostile or mistaken plan from asking an agent for gigabytes of weights. */
const MAX_WIDTH = 1 << 16;
const MAX_HIDDEN_LAYERS = 16;

function isPositiveInteger(value: unknown, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= max;
}

/**
 * Validates an untrusted value (for example a parsed study plan) as a model spec and returns a normalised copy.
 * Throws ModelSpecException whose code names the offending field.
 */
export function parseModelSpec(value: unknown): ModelSpec {
  if (typeof value !== 'object' || value === null) {
    throw new ModelSpecException(ModelSpecErrorCode.Spec, 'model spec must be an object');
  }
  const raw = value as Record<string, unknown>;
  if (!isPositiveInteger(raw['inputDim'], MAX_WIDTH)) {
    throw new ModelSpecException(ModelSpecErrorCode.InputDim, `inputDim must be an integer in [1, ${MAX_WIDTH}]`);
  }
  const inputDim = raw['inputDim'];
  switch (raw['kind']) {
    case 'logistic-regression':
      return { kind: 'logistic-regression', inputDim };
    case 'mlp': {
      const hidden = raw['hiddenLayers'];
      if (
        !Array.isArray(hidden) ||
        hidden.length > MAX_HIDDEN_LAYERS ||
        !hidden.every((units) => isPositiveInteger(units, MAX_WIDTH))
      ) {
        throw new ModelSpecException(
          ModelSpecErrorCode.HiddenLayers,
          `hiddenLayers must be at most ${MAX_HIDDEN_LAYERS} integers in [1, ${MAX_WIDTH}]`,
        );
      }
      const activation = raw['activation'];
      if (activation !== 'relu' && activation !== 'tanh') {
        throw new ModelSpecException(ModelSpecErrorCode.Activation, "activation must be 'relu' or 'tanh'");
      }
      const task = raw['task'];
      if (task !== 'binary' && task !== 'multiclass') {
        throw new ModelSpecException(ModelSpecErrorCode.Task, "task must be 'binary' or 'multiclass'");
      }
      const classes = raw['classes'];
      if (task === 'multiclass') {
        if (!isPositiveInteger(classes, MAX_WIDTH) || classes < 2) {
          throw new ModelSpecException(ModelSpecErrorCode.Classes, 'classes must be an integer >= 2 for multiclass');
        }
        return { kind: 'mlp', inputDim, hiddenLayers: [...hidden], activation, task, classes };
      }
      if (classes !== undefined && classes !== 2) {
        throw new ModelSpecException(ModelSpecErrorCode.Classes, 'classes must be absent or 2 for a binary task');
      }
      return { kind: 'mlp', inputDim, hiddenLayers: [...hidden], activation, task };
    }
    default:
      throw new ModelSpecException(ModelSpecErrorCode.Kind, `kind must be one of ${MODEL_ARCHITECTURES.join(', ')}`);
  }
}

/** Number of outputs: 1 for binary (probability of class 1), k for a k-class softmax. */
export function outputUnits(spec: ModelSpec): number {
  return spec.kind === 'mlp' && spec.task === 'multiclass' ? (spec.classes ?? 2) : 1;
}

/** True when the model ends in a sigmoid and is trained with binary cross-entropy. */
export function isBinary(spec: ModelSpec): boolean {
  return outputUnits(spec) === 1;
}

/** The dense layers a (validated) spec describes, input to output. */
export function denseLayers(spec: ModelSpec): DenseLayerShape[] {
  const checked = parseModelSpec(spec);
  const hidden = checked.kind === 'mlp' ? checked.hiddenLayers : [];
  const hiddenActivation: HiddenActivation = checked.kind === 'mlp' ? checked.activation : 'relu';
  const layers: DenseLayerShape[] = [];
  let inputs = checked.inputDim;
  for (const units of hidden) {
    layers.push({ inputs, units, activation: hiddenActivation });
    inputs = units;
  }
  const out = outputUnits(checked);
  layers.push({ inputs, units: out, activation: out === 1 ? 'sigmoid' : 'softmax' });
  return layers;
}
