import {
  binaryMetrics,
  compileNetwork,
  evaluate,
  multiclassMetrics,
  parameterLayout,
  predictNetwork,
  regressionMetrics,
  scoreHistograms,
  trainLocal,
  trainNetwork,
  type LabelArray,
  type LocalTrainingResult,
  type ModelSpec,
  type NetworkExampleSource,
  type TaskMetrics,
} from '@tessera/ml';
import {
  MAX_REPORTED_CONFUSION_CLASSES,
  type EvaluationPayload,
  type LabelRule,
  type NetworkSpec,
  type TaskMetricsRelease,
} from '@tessera/protocol';
import { processFixedFeatures, type FixedFeatureStore } from './fixed-feature-store';
import type { LocalTrainingOptions } from './plan-mapping.util';

/**
 * Rows read from disk a batch at a time (images: data/image-dataset.ts; tabular CSV: data/tabular-stream.ts): training
 * reads through `withAugmentation(seed)` (the plan's augmentation, if any), evaluation through `readPlain`.
 */
export interface StreamedRows {
  readPlain(indices: ArrayLike<number>, out: Float32Array): Promise<void>;
  withAugmentation(seed: number): NetworkExampleSource;
  /** Whether training reads differ from plain reads (the plan augments): then no transform of them can be kept. */
  augments(): boolean;
}

/** One split of a silo's data as a model reads it: rows in memory, or rows read from disk a batch at a time. */
export interface SplitData {
  readonly n: number;
  readonly y: LabelArray;
  readonly x: Float32Array | StreamedRows;
}

/** A silo's data for one study and plan: the training split and the held-out test split. */
export interface StudyData {
  readonly train: SplitData;
  readonly test: SplitData;
}

/** A model's evaluation on the held-out split: for the silo's log, and the exact release when the plan allows it. */
export interface LocalEvaluation {
  readonly loss: number;
  readonly n: number;
  /** The payload an 'exact' release sends (ExactEvaluation for registry models, TaskEvaluation for networks). */
  readonly exact: EvaluationPayload;
  /** The figures in words, for the silo's own log. */
  readonly summary: string;
}

/**
 * What the task executor needs of a plan's model, whichever it is: a registry model ('logistic-regression', 'mlp'),
 * trained exactly as before network plans (so every approved study reproduces), or a declarative network.
 */
export interface StudyModel {
  readonly parameterCount: number;
  /** Values per tabular record the model reads (checked against what the schema encodes to); null for images. */
  readonly inputWidth: number | null;
  /** Local training from `parameters` (the global model), DP-SGD when options.dp is set. */
  train(
    parameters: Float32Array,
    data: SplitData,
    options: LocalTrainingOptions,
    seed: number,
  ): Promise<LocalTrainingResult>;
  evaluate(parameters: Float32Array, split: SplitData): Promise<LocalEvaluation>;
  /** Per true label, exact histograms of P(y = 1) in `bins` bins (binary tasks only; the noisy release's input). */
  scoreHistograms(parameters: Float32Array, split: SplitData, bins: number): Promise<ScoreCounts>;
}

export interface ScoreCounts {
  negatives: number[];
  positives: number[];
}

const fmt = (value: number | null | undefined, digits = 3): string =>
  value === null || value === undefined ? 'n/a' : value.toFixed(digits);

function inMemory(split: SplitData, what: string): Float32Array {
  if (split.x instanceof Float32Array) return split.x;
  throw new Error(`${what} reads tabular rows in memory; this split is read from disk batch by batch`);
}

/** The registry's logistic regression or MLP (binary), trained and evaluated by @tessera/ml as before. */
export class RegistryStudyModel implements StudyModel {
  readonly parameterCount: number;
  readonly inputWidth: number;

  constructor(readonly spec: ModelSpec) {
    this.parameterCount = parameterLayout(spec).size;
    this.inputWidth = spec.inputDim;
  }

  train(parameters: Float32Array, data: SplitData, options: LocalTrainingOptions, seed: number) {
    return trainLocal({
      spec: this.spec,
      parameters,
      x: inMemory(data, 'a registry model'),
      y: data.y,
      ...options,
      seed,
    });
  }

  async evaluate(parameters: Float32Array, split: SplitData): Promise<LocalEvaluation> {
    const m = await evaluate(this.spec, parameters, inMemory(split, 'a registry model'), split.y);
    return {
      loss: m.loss,
      n: m.n,
      exact: { kind: 'exact', loss: m.loss, accuracy: m.accuracy, auc: m.auc, n: m.n, positives: m.positives },
      summary: `loss ${fmt(m.loss)}, accuracy ${fmt(m.accuracy)}, AUC ${fmt(m.auc)}, n ${m.n} (${m.positives} positive)`,
    };
  }

  scoreHistograms(parameters: Float32Array, split: SplitData, bins: number): Promise<ScoreCounts> {
    return scoreHistograms(this.spec, parameters, inMemory(split, 'a registry model'), split.y, bins);
  }
}

/** Rows per prediction pass when a split streams: bounds evaluation memory like a training batch. */
const EVALUATION_CHUNK = 256;
/** Probabilities are clamped to [ε, 1 − ε] in the evaluation loss, as a float32 softmax/sigmoid saturates. */
const PROBABILITY_FLOOR = 1e-7;

/**
 * A declarative network (tessera.network/1) trained by @tessera/ml's trainNetwork (DP-SGD per-example clipping for
 * every layer kind) and evaluated with its task's metrics. `label` is the plan's label rule: a regression label's
 * declared scaling is undone before MAE and RMSE, so they are in the label column's own units.
 */
export class NetworkStudyModel implements StudyModel {
  readonly parameterCount: number;
  readonly inputWidth: number | null;
  private readonly rowLength: number;

  /**
   * `features` keeps the features of the network's fixed front per split (a first scattering layer: computed once,
   * then each round trains and evaluates the layers after it; fixed-feature-store.ts).
   */
  constructor(
    readonly spec: NetworkSpec,
    private readonly label: LabelRule,
    private readonly features: FixedFeatureStore = processFixedFeatures,
  ) {
    const compiled = compileNetwork(spec);
    this.parameterCount = compiled.layout.size;
    this.rowLength = compiled.table.rowLength;
    this.inputWidth = spec.input.kind === 'tabular' ? this.rowLength : null;
  }

  async train(
    parameters: Float32Array,
    data: SplitData,
    options: LocalTrainingOptions,
    seed: number,
  ): Promise<LocalTrainingResult> {
    // Augmented reads change at every step: the fixed front's features of the plain images would be the wrong rows.
    const augmented = !(data.x instanceof Float32Array) && data.x.augments();
    const features = augmented ? null : await this.features.featuresOf(this.spec, data);
    if (features !== null) {
      return trainNetwork({
        network: this.spec,
        parameters,
        x: features,
        rows: 'fixed-features',
        y: data.y,
        ...options,
        seed,
      });
    }
    const x = data.x instanceof Float32Array ? data.x : data.x.withAugmentation(seed);
    return trainNetwork({ network: this.spec, parameters, x, y: data.y, ...options, seed });
  }

  /** The network's predictions on a split (probabilities, or values), one chunk of rows at a time when it streams. */
  async predictions(parameters: Float32Array, split: SplitData): Promise<Float32Array> {
    const features = await this.features.featuresOf(this.spec, split);
    if (features !== null) return predictNetwork(this.spec, parameters, features, 'fixed-features');
    if (split.x instanceof Float32Array) return predictNetwork(this.spec, parameters, split.x);
    const outputs = this.spec.task.kind === 'multiclass' ? this.spec.task.classes : 1;
    const out = new Float32Array(split.n * outputs);
    const rows = new Float32Array(EVALUATION_CHUNK * this.rowLength);
    for (let start = 0; start < split.n; start += EVALUATION_CHUNK) {
      const count = Math.min(EVALUATION_CHUNK, split.n - start);
      const indices = Int32Array.from({ length: count }, (_, k) => start + k);
      await split.x.readPlain(indices, rows);
      out.set(await predictNetwork(this.spec, parameters, rows.subarray(0, count * this.rowLength)), start * outputs);
    }
    return out;
  }

  async evaluate(parameters: Float32Array, split: SplitData): Promise<LocalEvaluation> {
    const predicted = await this.predictions(parameters, split);
    const loss = this.meanLoss(predicted, split.y);
    const metrics = this.metrics(predicted, split.y);
    return {
      loss,
      n: split.n,
      exact: { kind: 'task-metrics', loss, n: split.n, metrics: releaseOf(metrics, split.y) },
      summary: `loss ${fmt(loss)}, ${describeMetrics(metrics)}, n ${split.n}`,
    };
  }

  async scoreHistograms(parameters: Float32Array, split: SplitData, bins: number): Promise<ScoreCounts> {
    if (this.spec.task.kind !== 'binary') {
      throw new Error(`score histograms need a binary task; this network learns a ${this.spec.task.kind} task`);
    }
    const predicted = await this.predictions(parameters, split);
    const negatives = new Array<number>(bins).fill(0);
    const positives = new Array<number>(bins).fill(0);
    for (let i = 0; i < split.n; i++) {
      const p = predicted[i]!;
      if (!(p >= 0 && p <= 1)) throw new Error('the model gives a non-finite probability');
      // The bins of @tessera/ml scoreHistograms: [b/B, (b+1)/B), the last one including 1.
      (split.y[i] === 1 ? positives : negatives)[Math.min(bins - 1, Math.floor(p * bins))]!++;
    }
    return { negatives, positives };
  }

  /** The task's mean loss from the predictions (cross-entropy of the clamped probabilities, squared error or Huber). */
  private meanLoss(predicted: Float32Array, y: LabelArray): number {
    const task = this.spec.task;
    const n = y.length;
    const clamp = (p: number) => Math.min(1 - PROBABILITY_FLOOR, Math.max(PROBABILITY_FLOOR, p));
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const label = y[i]!;
      if (task.kind === 'binary') {
        const p = clamp(predicted[i]!);
        sum -= label === 1 ? Math.log(p) : Math.log(1 - p);
      } else if (task.kind === 'multiclass') {
        sum -= Math.log(clamp(predicted[i * task.classes + label]!));
      } else {
        const r = Math.abs(predicted[i]! - label);
        const delta = task.huberDelta ?? 1;
        sum += task.loss === 'mse' ? r * r : r <= delta ? (r * r) / 2 : delta * (r - delta / 2);
      }
    }
    return n > 0 ? sum / n : Number.NaN;
  }

  private metrics(predicted: Float32Array, y: LabelArray): TaskMetrics {
    const task = this.spec.task;
    if (task.kind === 'binary') return binaryMetrics(predicted, y);
    if (task.kind === 'multiclass') return multiclassMetrics(predicted, y, task.classes);
    const scaling = this.label.operator === 'value' ? this.label.scaling : undefined;
    const unscale = (v: number) => (scaling === undefined ? v : v * scaling.scale + scaling.center);
    return regressionMetrics(Array.from(predicted, unscale), Array.from(y, unscale));
  }
}

function releaseOf(m: TaskMetrics, y: LabelArray): TaskMetricsRelease {
  if (m.task === 'regression') return { task: 'regression', mae: m.mae, rmse: m.rmse, r2: m.r2 };
  if (m.task === 'binary') {
    let positives = 0;
    for (let i = 0; i < y.length; i++) if (y[i] === 1) positives++;
    return {
      task: 'binary',
      accuracy: m.accuracy,
      balancedAccuracy: m.balancedAccuracy,
      auc: m.auc,
      f1: m.f1,
      positives,
    };
  }
  return {
    task: 'multiclass',
    accuracy: m.accuracy,
    balancedAccuracy: m.balancedAccuracy,
    auc: m.auc,
    f1: m.f1,
    ...(m.confusionMatrix.length <= MAX_REPORTED_CONFUSION_CLASSES ? { confusionMatrix: m.confusionMatrix } : {}),
  };
}

function describeMetrics(m: TaskMetrics): string {
  if (m.task === 'regression') return `MAE ${fmt(m.mae)}, RMSE ${fmt(m.rmse)}, R² ${fmt(m.r2)}`;
  return `accuracy ${fmt(m.accuracy)}, balanced accuracy ${fmt(m.balancedAccuracy)}, AUC ${fmt(m.auc)}, F1 ${fmt(m.f1)}`;
}
