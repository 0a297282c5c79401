import { canonicalJson, sha256Hex } from '@tessera/canonical';
import { z } from 'zod';
import { inferNetworkShapes } from './network-spec-shapes';
import { NetworkSpecError, type NetworkSpec } from './network-spec-schema';
import { aggregationProblems, describeAggregation, describeScreening } from './study-plan-aggregation';
import { describeSecureAggregation, SecureAggregationPlan, secureAggregationProblems } from './study-plan-secagg';
import {
  describePersonalization,
  PersonalizationPlan,
  personalizationModels,
  personalizationProblems,
} from './study-plan-personalization';
import {
  ClassLabelRule,
  describeTask,
  ImageTransform,
  layerTableLines,
  modelProblems,
  NetworkModelChoice,
  networkOfModel,
  networkProblem,
  taskMetricNames,
  ValueLabelRule,
} from './study-plan-model';

export * from './study-plan-model';

export {
  aggregationProblems,
  describeAggregation,
  describeScreening,
  MIN_MEDIAN_UPDATES,
  SCREENING_DEFAULT_FLOORS,
} from './study-plan-aggregation';
export {
  describeSecureAggregation,
  MAX_SECURE_AGGREGATION_SILOS,
  MIN_SECURE_AGGREGATION_SILOS,
  SecureAggregationPlan,
  secureAggregationCoordinateBound,
  secureAggregationProblems,
} from './study-plan-secagg';
export {
  describePersonalization,
  localBaselineEpochs,
  PersonalizationPlan,
  personalizationModels,
  personalizationProblems,
} from './study-plan-personalization';

const name = z.string().min(1).max(64);
const finitePositive = z.number().finite().positive();

/**
 * Every constant used to encode a record is declared here, in the plan, and never computed from a silo's file: a
 * statistic of the file (a mean, a standard deviation, the most frequent level) depends on every record, so adding
 * one record would change how every other record is encoded and break the neighbouring relation that differential
 * privacy is stated for (docs/privacy.md, "From the raw file to the wire").
 */
export const NumericScaling = z
  .object({
    /** The encoded value is (x − center) / scale. */
    center: z.number().finite(),
    scale: finitePositive,
  })
  .strict();
export type NumericScaling = z.infer<typeof NumericScaling>;

export const FeatureColumn = z.discriminatedUnion('type', [
  z
    .object({
      name,
      type: z.literal('numeric'),
      /** Declared scaling (absent: the value is used as is). */
      scaling: NumericScaling.optional(),
      /** Value that replaces a missing cell when the schema's `missing` is 'impute' (before scaling). */
      impute: z.number().finite().optional(),
    })
    .strict(),
  z
    .object({
      name,
      type: z.literal('categorical'),
      // Every silo must produce the same encoded columns whatever values it happens to hold: levels are fixed.
      levels: z.array(z.string().min(1).max(64)).min(2).max(256),
      /** Level that replaces a missing cell when the schema's `missing` is 'impute'; one of `levels`. */
      impute: z.string().min(1).max(64).optional(),
    })
    .strict(),
]);
export type FeatureColumn = z.infer<typeof FeatureColumn>;

export const LabelRule = z.union([
  z
    .object({
      column: name,
      operator: z.enum(['>', '>=', '<', '<=', '==', '!=']),
      threshold: z.number().finite(),
    })
    .strict(),
  z.object({ column: name, operator: z.literal('in'), values: z.array(z.string()).min(1) }).strict(),
  // Network plans only (study-plan-model.ts): a class index (multiclass) or the value itself (regression).
  ClassLabelRule,
  ValueLabelRule,
]);
export type LabelRule = z.infer<typeof LabelRule>;

/**
 * How a silo splits its records into training and held-out test records: by a keyed hash of each record alone
 * (HMAC-SHA-256 under `salt` of the record's canonical fields; the record is held out when the hash, read as a
 * fraction of 2^64, is below `testFraction`). Whether one record trains or evaluates therefore never depends on
 * any other record: adding or removing a record moves nothing else between the splits. Identical rows land in the
 * same split. The test size is binomial around testFraction·n rather than exact.
 */
export const RecordSplit = z
  .object({
    testFraction: z.number().gt(0).lt(1),
    /** Public per-study key of the hash (not a secret: the guarantee holds for every salt). */
    salt: z
      .string()
      .min(8)
      .max(128)
      .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces'),
  })
  .strict();
export type RecordSplit = z.infer<typeof RecordSplit>;

/** The feature schema: which columns, their declared encoding, the label, missing values and the local split. */
export const FeatureSchema = z
  .object({
    /** Column names in file order for headerless files; absent when the first row is a header. */
    columns: z.array(name).min(2).max(1024).optional(),
    missingValues: z.array(z.string().max(16)).max(16).optional(),
    features: z.array(FeatureColumn).min(1).max(1024),
    label: LabelRule,
    /** 'drop-rows': drop a row with any missing feature. 'impute': use each feature's declared `impute` value. */
    missing: z.enum(['drop-rows', 'impute']),
    split: RecordSplit,
  })
  .strict();
export type FeatureSchema = z.infer<typeof FeatureSchema>;

/**
 * The data of an image study: a folder of PNG or JPEG files and a CSV manifest (header row) with one row per image:
 * `fileColumn` holds the image's path relative to the folder, `label.column` its label. Each image is decoded and
 * transformed as `image` declares (study-plan-model.ts, ImageTransform) to the network input's size. The split hashes
 * each manifest row's own file path and label, as a tabular record's fields (RecordSplit).
 */
export const ImageSchema = z
  .object({
    kind: z.literal('images'),
    fileColumn: name,
    label: LabelRule,
    /** Label cells that mean "no label" (the row is dropped and counted); the empty cell always does. */
    missingValues: z.array(z.string().max(16)).max(16).optional(),
    image: ImageTransform,
    split: RecordSplit,
  })
  .strict();
export type ImageSchema = z.infer<typeof ImageSchema>;

/**
 * A plan's data: tabular records (FeatureSchema, every plan before image studies: no `kind` key, so their bytes are
 * unchanged) or images (ImageSchema, `kind: 'images'`). Discriminated by `kind` so a bad schema's problems name its
 * own fields, not "no union member matched".
 */
export const DataSchema = z.discriminatedUnion('kind', [
  FeatureSchema.extend({ kind: z.undefined().optional() }),
  ImageSchema,
]);
export type DataSchema = z.infer<typeof DataSchema>;

export function isImageSchema(schema: DataSchema): schema is ImageSchema {
  return 'kind' in schema && schema.kind === 'images';
}

/** The feature schema of a tabular plan; an image plan has none (a caller that reads CSV records has a bug). */
export function tabularSchemaOf(plan: { schema: DataSchema }): FeatureSchema {
  if (isImageSchema(plan.schema)) throw new Error('an image study has no tabular feature schema');
  return plan.schema;
}

export const ModelChoice = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('logistic-regression') }).strict(),
  z
    .object({
      kind: z.literal('mlp'),
      hiddenLayers: z.array(z.number().int().min(1).max(4096)).min(1).max(8),
      activation: z.enum(['relu', 'tanh']),
    })
    .strict(),
  /** A declarative network (tessera.network/1, docs/models.md): the layers, the input and the task. */
  NetworkModelChoice,
]);
export type ModelChoice = z.infer<typeof ModelChoice>;

export const ServerOptimizerPlan = z
  .object({
    kind: z.enum(['fedavg', 'fedavgm', 'fedadam', 'fedyogi', 'fedadagrad']),
    learningRate: finitePositive.max(100),
    /** FedAvgM momentum. */
    momentum: z.number().min(0).lt(1).optional(),
    /** Adaptive optimizers (Reddi et al. 2021): β1, β2 and the adaptivity τ. */
    beta1: z.number().min(0).lt(1).optional(),
    beta2: z.number().min(0).lt(1).optional(),
    tau: finitePositive.optional(),
  })
  .strict();
export type ServerOptimizerPlan = z.infer<typeof ServerOptimizerPlan>;

export const TrainingPlan = z
  .object({
    rounds: z.number().int().min(1).max(1000),
    localEpochs: z.number().int().min(1).max(100),
    batchSize: z.number().int().min(1).max(100_000),
    learningRate: finitePositive.max(10),
    /**
     * 'fedavg', 'fedprox' (proximal term, proximalMu) or 'scaffold' (Karimireddy et al., ICML 2020: control variates
     * correct each local step for client drift; the update carries the model delta and the control delta: ADR 0019).
     */
    algorithm: z.enum(['fedavg', 'fedprox', 'scaffold']),
    /** FedProx μ (Li et al. 2020), required with 'fedprox'. */
    proximalMu: z.number().finite().min(0).max(100).optional(),
    serverOptimizer: ServerOptimizerPlan,
    /** Seed of the initial global model, so the study is reproducible. */
    initSeed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1),
  })
  .strict();
export type TrainingPlan = z.infer<typeof TrainingPlan>;

/**
 * How the hub combines the round's updates (docs/aggregation.md). Absent from a plan: FedAvg, today's behaviour, so
 * every plan written before this option keeps its bytes and its hash. The robust aggregators are unweighted (their
 * guarantees count bad silos, and a silo could inflate its own record count) and mirror @tessera/aggregation's
 * AggregatorSpec, which the hub maps them to; the protocol does not depend on that library.
 */
export const AggregatorPlan = z.discriminatedUnion('kind', [
  /** The mean of the updates (weighted by record counts when the plan releases them). */
  z.object({ kind: z.literal('fedavg') }).strict(),
  /** Coordinate-wise median (Yin et al. 2018). */
  z.object({ kind: z.literal('coordinate-median') }).strict(),
  /** Coordinate-wise β-trimmed mean: drops the ⌊βn⌋ largest and smallest values of each coordinate (Yin et al. 2018). */
  z.object({ kind: z.literal('trimmed-mean'), trimFraction: z.number().gt(0).lt(0.5) }).strict(),
  /**
   * Krum (selected 1, the default) or Multi-Krum (the mean of the `selected` best-scored updates), tolerating
   * `byzantine` = f arbitrary updates when a round has n > 2f + 2 (Blanchard et al. 2017).
   */
  z
    .object({
      kind: z.literal('krum'),
      byzantine: z.number().int().min(0).max(498),
      selected: z.number().int().min(1).max(1000).optional(),
    })
    .strict(),
  /** Geometric median by smoothed Weiszfeld (Pillutla et al. 2019); defaults: tolerance 1e-6, 100 iterations. */
  z
    .object({
      kind: z.literal('geometric-median'),
      /** Stop when the objective decreased by at most this fraction of its value in one iteration; 0: run them all. */
      tolerance: z.number().min(0).max(1).optional(),
      maxIterations: z.number().int().min(1).max(10_000).optional(),
    })
    .strict(),
]);
export type AggregatorPlan = z.infer<typeof AggregatorPlan>;

/**
 * Server-side norm bounding before aggregation: every update with L2 norm above the bound is scaled down to it.
 * 'fixed': the bound in parameter units. 'median-multiple': `multiplier` × the round's median update norm (at least 1:
 * a bound below the median would shrink most honest updates).
 */
export const NormBoundPlan = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('fixed'), maxNorm: finitePositive.max(1e6) }).strict(),
  z.object({ mode: z.literal('median-multiple'), multiplier: z.number().finite().min(1).max(1000) }).strict(),
]);
export type NormBoundPlan = z.infer<typeof NormBoundPlan>;

export const AggregationPlan = z
  .object({
    aggregator: AggregatorPlan,
    normBound: NormBoundPlan.optional(),
  })
  .strict();
export type AggregationPlan = z.infer<typeof AggregationPlan>;

/**
 * Update screening, every training round: each update's L2 norm, its cosine to the round's aggregate and to the
 * previous global update; an update more than `threshold` robust deviations (scaled median absolute deviation,
 * floored) from the round's median is flagged in the audit trail and the console, and left out of the aggregate when
 * `exclude` is set. Absent: no screening.
 */
export const ScreeningPlan = z
  .object({
    /** Robust deviations beyond which an update is flagged (3.5 is Iglewicz & Hoaglin's modified-z cut-off). */
    threshold: finitePositive.max(100),
    /** true: flagged updates are left out of the round's aggregate, with the reason recorded. */
    exclude: z.boolean(),
    /**
     * Smallest robust scale of the norm, in log units (to first order a fraction of the median norm); default 0.35,
     * the spread honest hospitals' norms show (docs/aggregation.md, "Calibration").
     */
    normScaleFloor: z.number().finite().min(0).max(10).optional(),
    /** Smallest robust scale of a cosine; default 0.45. Silos with alike data may lower both to find more attacks. */
    cosineScaleFloor: z.number().finite().min(0).max(2).optional(),
  })
  .strict();
export type ScreeningPlan = z.infer<typeof ScreeningPlan>;

/**
 * The privacy plan. `none` trains without differential privacy (stated plainly to the steward). `dp-sgd` is
 * example-level DP: the unit is one record. `dp-fedavg` is silo-level DP: the unit is a silo's whole dataset.
 * The noise multiplier is given, or derived by the hub from the target ε for the whole study before approval.
 */
export const PrivacyPlan = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('none') }).strict(),
  z
    .object({
      mode: z.literal('dp-sgd'),
      unit: z.literal('record'),
      targetEpsilon: finitePositive.max(100),
      delta: z.number().gt(0).lt(1),
      clipNorm: finitePositive.max(1e6),
      noiseMultiplier: z.union([finitePositive.max(1e4), z.literal('derive')]),
      /** Poisson sampling rate q of each DP-SGD step (expected batch = q·n). */
      samplingRate: z.number().gt(0).max(1),
    })
    .strict(),
  z
    .object({
      mode: z.literal('dp-fedavg'),
      unit: z.literal('silo'),
      targetEpsilon: finitePositive.max(100),
      delta: z.number().gt(0).lt(1),
      clipNorm: finitePositive.max(1e6),
      noiseMultiplier: z.union([finitePositive.max(1e4), z.literal('derive')]),
      /**
       * Who adds the noise. Absent or 'central': the hub, to the sum of the clipped updates it receives. 'distributed'
       * (needs secureAggregation): each silo adds its share on the integer lattice before masking (the distributed
       * discrete Gaussian, docs/adr/0013), so the hub only ever sees the noisy sum.
       */
      noise: z.enum(['central', 'distributed']).optional(),
    })
    .strict(),
]);
export type PrivacyPlan = z.infer<typeof PrivacyPlan>;

export const ParticipationPlan = z
  .object({
    minSilosPerRound: z.number().int().min(1).max(1000),
    roundDeadlineSeconds: z
      .number()
      .int()
      .min(5)
      .max(7 * 86_400),
    /** A round that misses its minimum is retried this many times before the study fails. */
    maxRoundRetries: z.number().int().min(0).max(10),
    /** What a silo's failure (e.g. its data lacks a column) does: drop that silo, or fail the study. */
    onSiloFailure: z.enum(['continue', 'fail-study']),
  })
  .strict();
export type ParticipationPlan = z.infer<typeof ParticipationPlan>;

/**
 * What the silo's evaluation of each global model releases to the hub. Evaluation is on the held-out test records,
 * which never train (the split depends on each record alone), so its cost composes in parallel with training's.
 * - 'none': nothing; the agent evaluates for its own log only.
 * - 'noisy' (record-level DP studies only): histograms of the model's predicted probability on the test records, in
 *   `scoreBins` equal bins over [0, 1], one per true label, each count with discrete Gaussian noise. One record
 *   changes one count by one (L2 sensitivity 1); the noise is calibrated by the plan's accountant so that the
 *   evaluation releases alone stay within the target ε, and charged.
 * - 'exact': loss, accuracy, AUC, test size and positives, released WITHOUT differential privacy (the steward
 *   consents to exactly that, and reports list it).
 * `rounds`: 'final' evaluates only the final model; 'every' also the input model of every round.
 */
export const EvaluationRelease = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('none') }).strict(),
  z
    .object({
      mode: z.literal('noisy'),
      rounds: z.enum(['final', 'every']),
      scoreBins: z.number().int().min(2).max(20),
    })
    .strict(),
  z.object({ mode: z.literal('exact'), rounds: z.enum(['final', 'every']) }).strict(),
]);
export type EvaluationRelease = z.infer<typeof EvaluationRelease>;

/**
 * Everything a silo sends besides its (noised) model update. The default a study designer should choose releases
 * nothing without noise; each 'exact' item is released without differential privacy and is listed to the steward.
 */
export const ReleasePlan = z
  .object({
    evaluation: EvaluationRelease,
    /**
     * 'none': the silo does not report how many records it trained on, and the hub averages updates with equal
     * weights. 'exact': the count is released without DP and weights FedAvg.
     */
    trainingExamples: z.enum(['none', 'exact']),
  })
  .strict();
export type ReleasePlan = z.infer<typeof ReleasePlan>;

/** Everything a data steward approves, byte for byte (after RFC 8785 canonicalization). */
export const StudyPlan = z
  .object({
    name: z.string().min(3).max(128),
    purpose: z.string().min(10).max(4000),
    model: ModelChoice,
    schema: DataSchema,
    training: TrainingPlan,
    privacy: PrivacyPlan,
    participation: ParticipationPlan,
    release: ReleasePlan,
    /** How updates are combined; absent: FedAvg (docs/aggregation.md). */
    aggregation: AggregationPlan.optional(),
    /** Screening of every update; absent: none. */
    screening: ScreeningPlan.optional(),
    /** Secure aggregation of the updates (docs/secure-aggregation.md); absent: the hub receives each update. */
    secureAggregation: SecureAggregationPlan.optional(),
    /** Local fine-tuning of the final model at each silo (docs/personalization.md); absent: none. */
    personalization: PersonalizationPlan.optional(),
    /** Invited silos (ids). Part of the plan: a steward approves who else takes part. */
    silos: z.array(z.string().uuid()).min(1).max(1000),
  })
  .strict();
export type StudyPlan = z.infer<typeof StudyPlan>;
/** A plan of tabular records (every plan before image studies): what builders of tabular test plans return. */
export type TabularStudyPlan = StudyPlan & { schema: FeatureSchema & { kind?: undefined } };

/** Every problem with a plan, each naming its field path; empty when the plan is valid. */
export function studyPlanProblems(value: unknown): string[] {
  const parsed = StudyPlan.safeParse(value);
  if (parsed.success) return semanticProblems(parsed.data);
  const problems = parsed.error.issues
    .filter((i) => !isNetworkIssue(i.path))
    .map((i) => `${i.path.join('.') || 'plan'}: ${i.message}`);
  if (parsed.error.issues.some((i) => isNetworkIssue(i.path))) problems.push(networkStructureProblem(value));
  return problems;
}

function isNetworkIssue(path: readonly PropertyKey[]): boolean {
  return path[0] === 'model' && path[1] === 'network';
}

/**
 * A network that is not even a spec, in the network checker's words: they name the layer by its id and the field
 * (`model.network: layer "pool_2", size: …`), where zod would say `model.network.layers.3.size`.
 */
function networkStructureProblem(value: unknown): string {
  const network = (value as { model?: { network?: unknown } } | null)?.model?.network;
  try {
    inferNetworkShapes(network);
  } catch (err) {
    if (err instanceof NetworkSpecError) return networkProblem(err);
    throw err;
  }
  return 'model.network: is not a tessera.network/1 spec';
}

function semanticProblems(plan: StudyPlan): string[] {
  const out: string[] = isImageSchema(plan.schema) ? imageSchemaProblems(plan.schema) : tabularProblems(plan.schema);
  const evaluation = plan.release.evaluation;
  if (evaluation.mode === 'noisy' && plan.privacy.mode !== 'dp-sgd') {
    out.push(
      `release.evaluation: noisy evaluation protects single test records and needs a record-level (dp-sgd) privacy plan; with ${plan.privacy.mode} choose 'none', or 'exact' to release the metrics without differential privacy`,
    );
  }
  if (plan.training.algorithm === 'fedprox' && plan.training.proximalMu === undefined) {
    out.push('training.proximalMu: is required with the fedprox algorithm');
  }
  out.push(...scaffoldProblems(plan));
  if (new Set(plan.silos).size !== plan.silos.length) out.push('silos: a silo is invited twice');
  if (plan.participation.minSilosPerRound > plan.silos.length) {
    out.push(
      `participation.minSilosPerRound: ${plan.participation.minSilosPerRound} exceeds the ${plan.silos.length} invited silos`,
    );
  }
  const opt = plan.training.serverOptimizer;
  if (['fedadam', 'fedyogi', 'fedadagrad'].includes(opt.kind) && opt.tau === undefined) {
    out.push(`training.serverOptimizer.tau: is required with ${opt.kind}`);
  }
  out.push(...aggregationProblems(plan));
  out.push(...secureAggregationProblems(plan));
  out.push(...personalizationProblems(plan));
  out.push(
    ...modelProblems({
      model: plan.model,
      data: isImageSchema(plan.schema)
        ? { kind: 'images', image: plan.schema.image }
        : { kind: 'tabular', encodedFeatures: encodedFeatureCount(plan.schema) },
      label: plan.schema.label,
      evaluationMode: plan.release.evaluation.mode,
    }),
  );
  return out;
}

/**
 * What SCAFFOLD cannot be combined with (ADR 0019). Its update is the model delta followed by the control delta, and
 * the hub averages both halves: an aggregator that is not a mean, norm bounding, screening or a secure sum would treat
 * the two halves as one vector, and under DP-FedAvg the control delta would be a second release of the silo's data
 * that the accountant does not charge.
 */
function scaffoldProblems(plan: StudyPlan): string[] {
  if (plan.training.algorithm !== 'scaffold') {
    return [];
  }
  const out: string[] = [];
  if (plan.training.proximalMu !== undefined) {
    out.push('training.proximalMu: applies to fedprox only; scaffold corrects drift with control variates instead');
  }
  const kind = plan.aggregation?.aggregator.kind ?? 'fedavg';
  if (kind !== 'fedavg') {
    out.push(
      `aggregation.aggregator: scaffold averages the silos' control deltas, so it needs the mean (fedavg); ${kind} is not a mean`,
    );
  }
  if (plan.aggregation?.normBound) {
    out.push(
      'aggregation.normBound: scaffold uploads the model delta and the control delta in one vector; bounding its norm would scale the control delta too',
    );
  }
  if (plan.screening) {
    out.push(
      'screening: scaffold uploads the model delta and the control delta in one vector; screening is not defined on it',
    );
  }
  if (plan.secureAggregation) {
    out.push(
      'secureAggregation: scaffold is not available under secure aggregation (its clipping and quantisation cover the model update only)',
    );
  }
  if (plan.privacy.mode === 'dp-fedavg') {
    out.push(
      'training.algorithm: scaffold under dp-fedavg would release the control delta outside the silo-level guarantee; use dp-sgd (record-level, the control variate is post-processing of its noisy gradients) or fedavg/fedprox',
    );
  }
  return out;
}

/** The local algorithm in the steward's words. */
function describeAlgorithm(t: TrainingPlan): string {
  if (t.algorithm === 'scaffold') {
    return 'scaffold (control variates: each silo keeps its own and uploads its change with the model update)';
  }
  return t.algorithm;
}

/**
 * Float32 values in one silo's update for a model of `parameters` values: the model delta, and under SCAFFOLD the
 * control delta after it (ADR 0019).
 */
export function updateLengthOf(plan: Pick<StudyPlan, 'training'>, parameters: number): number {
  return plan.training.algorithm === 'scaffold' ? 2 * parameters : parameters;
}

function labelProblems(label: LabelRule): string[] {
  if (label.operator !== 'class') return [];
  const dup = label.classes.find((c, i) => label.classes.indexOf(c) !== i);
  return dup === undefined ? [] : [`schema.label.classes: class "${dup}" appears twice`];
}

function imageSchemaProblems(schema: ImageSchema): string[] {
  const out = labelProblems(schema.label);
  if (schema.fileColumn === schema.label.column) {
    out.push(`schema.fileColumn: "${schema.fileColumn}" is also the label column`);
  }
  return out;
}

function tabularProblems(schema: FeatureSchema): string[] {
  const out = labelProblems(schema.label);
  const featureNames = schema.features.map((f) => f.name);
  const dup = featureNames.find((n, i) => featureNames.indexOf(n) !== i);
  if (dup) out.push(`schema.features: column "${dup}" appears twice`);
  if (featureNames.includes(schema.label.column)) {
    out.push(`schema.label.column: "${schema.label.column}" is also a feature`);
  }
  if (schema.columns) {
    for (const n of [...featureNames, schema.label.column]) {
      if (!schema.columns.includes(n)) out.push(`schema.columns: does not list "${n}"`);
    }
  }
  schema.features.forEach((f, i) => {
    if (schema.missing === 'impute' && f.impute === undefined) {
      out.push(`schema.features.${i}.impute: "${f.name}" needs a declared imputation value when missing is 'impute'`);
    }
    if (f.type === 'categorical' && f.impute !== undefined && !f.levels.includes(f.impute)) {
      out.push(`schema.features.${i}.impute: "${f.impute}" is not one of the levels of "${f.name}"`);
    }
  });
  return out;
}

/** Number of model inputs the schema produces: 1 per numeric column, levels − 1 per categorical one. */
export function encodedFeatureCount(schema: FeatureSchema): number {
  return schema.features.reduce((n, f) => n + (f.type === 'numeric' ? 1 : f.levels.length - 1), 0);
}

/**
 * The hash a steward approves: SHA-256 of the RFC 8785 canonical JSON of { studyId, version, plan }. The study id
 * and version are inside, so an approval cannot be replayed onto another study or an older version.
 */
export function planHash(studyId: string, version: number, plan: StudyPlan): string {
  return sha256Hex(canonicalJson({ studyId, version, plan }));
}

/**
 * Everything this plan releases from a silo WITHOUT differential privacy, in words (empty when everything a silo
 * sends is inside the DP guarantee). The steward consents to exactly this list: the agent's `studies show`, the
 * console's approval view and the compliance report print it.
 */
export function releasedWithoutDp(plan: StudyPlan): string[] {
  const out: string[] = [];
  if (plan.privacy.mode === 'none') {
    out.push(
      plan.secureAggregation
        ? "the sum of the silos' model updates, in which the hub never sees this silo's own (no differential privacy in this study)"
        : 'the model update itself (no differential privacy in this study)',
    );
  }
  if (plan.privacy.mode === 'dp-fedavg' && plan.privacy.noise !== 'distributed') {
    out.push(
      "the silo's clipped model update, to the hub (the hub adds the noise: DP-FedAvg protects against readers of the models, not against the hub)",
    );
  }
  if (plan.privacy.mode === 'dp-fedavg' && plan.screening) {
    out.push(
      "the screening statistics of the silo's clipped update (its L2 norm, its cosines to the round's aggregate and to the previous global update) and its flags, recorded by the hub in its audit trail and console every round",
    );
  }
  if (plan.release.trainingExamples === 'exact') out.push('the exact number of training records (FedAvg weight)');
  const e = plan.release.evaluation;
  if (e.mode === 'exact') {
    const when = e.rounds === 'every' ? 'for the model of every round' : 'for the final model';
    if (plan.model.kind === 'network') {
      const task = plan.model.network.task.kind;
      out.push(
        `test-split ${taskMetricNames(task).join(', ')} and the number of test records${task === 'binary' ? ' and of positives' : ''}, ${when}`,
      );
    } else {
      out.push(`test-split loss, accuracy, AUC, number of test records and of positives, ${when}`);
    }
    const local = personalizationModels(plan);
    if (local.length > 0) {
      out.push(
        `the same test-split metrics of this silo's ${local.map((m) => (m === 'personalized' ? 'personalized (fine-tuned) model' : 'local-only baseline model')).join(' and ')}, at the final evaluation (the models themselves stay at the silo)`,
      );
    }
  }
  return out;
}

/** The release plan in words. */
export function describeRelease(plan: StudyPlan): string {
  const e = plan.release.evaluation;
  const evaluation =
    e.mode === 'none'
      ? 'no evaluation results'
      : e.mode === 'noisy'
        ? `noisy test-split score histograms (${e.scoreBins} bins per label, discrete Gaussian noise, charged) ${e.rounds === 'every' ? 'every round' : 'for the final model'}`
        : `exact test-split metrics WITHOUT differential privacy ${e.rounds === 'every' ? 'every round' : 'for the final model'}`;
  const examples =
    plan.release.trainingExamples === 'exact'
      ? 'the exact training-record count WITHOUT differential privacy'
      : 'no record count (equal FedAvg weights)';
  return `${evaluation}; ${examples}`;
}

function describeFeature(f: FeatureColumn): string {
  if (f.type === 'categorical')
    return `${f.name} (one of ${f.levels.join('/')}${f.impute ? `, missing → ${f.impute}` : ''})`;
  const scaling = f.scaling ? ` (x − ${f.scaling.center}) / ${f.scaling.scale}` : '';
  return `${f.name}${scaling}${f.impute !== undefined ? `, missing → ${f.impute}` : ''}`;
}

function describeLabel(label: LabelRule): string {
  switch (label.operator) {
    case 'in':
      return `${label.column} in ${label.values.join('/')}`;
    case 'class':
      return `${label.column}, classes ${label.classes.map((c, k) => `${k} = ${c}`).join(', ')}`;
    case 'value':
      return `${label.column} (its value${label.scaling ? `, (y − ${label.scaling.center}) / ${label.scaling.scale}` : ''})`;
    default:
      return `${label.column} ${label.operator} ${label.threshold}`;
  }
}

function describeModel(model: ModelChoice): string {
  switch (model.kind) {
    case 'mlp':
      return `MLP, hidden layers ${model.hiddenLayers.join('×')} (${model.activation})`;
    case 'logistic-regression':
      return 'logistic regression';
    case 'network': {
      const spec = model.network;
      let parameters = '';
      try {
        parameters = `, ${inferNetworkShapes(spec).parameters.toLocaleString('en-US')} parameters`;
      } catch (err) {
        if (!(err instanceof NetworkSpecError)) throw err;
      }
      return `network (${spec.format}), ${spec.layers.length} layers${parameters}; ${describeTask(spec.task)}`;
    }
  }
}

function describeData(schema: DataSchema): string[] {
  if (isImageSchema(schema)) {
    const i = schema.image;
    const augment = [
      i.augmentation?.horizontalFlip ? 'horizontal flip' : null,
      i.augmentation?.randomCrop ? `random crop (padding ${i.augmentation.randomCrop.padding})` : null,
    ].filter((a) => a !== null);
    return [
      `images:       manifest column ${schema.fileColumn}; ${i.color}, resized by ${i.resize}${i.requireSize ? ` (only ${i.requireSize.width}×${i.requireSize.height} images accepted)` : ''}; normalised (v − [${i.normalization.mean.join(', ')}]) / [${i.normalization.std.join(', ')}]; augmentation ${augment.length === 0 ? 'none' : augment.join(', ')}`,
      `label:        ${describeLabel(schema.label)}`,
      `split:        held out for testing: ${Math.round(schema.split.testFraction * 100)}% of images, chosen by a keyed hash of each manifest row (salt ${schema.split.salt})`,
    ];
  }
  return [
    `features:     ${schema.features.map(describeFeature).join(', ')}`,
    `label:        ${describeLabel(schema.label)}`,
    `missing:      ${schema.missing}; held out for testing: ${Math.round(schema.split.testFraction * 100)}% of records, chosen by a keyed hash of each record (salt ${schema.split.salt})`,
  ];
}

/**
 * The network a plan trains, as the layer table reads it: the spec of a 'network' plan, or the preset a registry
 * choice is (networkOfModel). Tabular plans only for the registry choices (they have no image form).
 */
export function planNetwork(plan: StudyPlan): NetworkSpec {
  if (plan.model.kind === 'network') return plan.model.network;
  if (isImageSchema(plan.schema)) throw new Error(`a ${plan.model.kind} model has no image form`);
  return networkOfModel(plan.model, encodedFeatureCount(plan.schema));
}

/** A plan in words, for `tessera-agent studies show` and the console. */
export function describePlan(plan: StudyPlan): string[] {
  const t = plan.training;
  const p = plan.privacy;
  const model = describeModel(plan.model);
  const privacy =
    p.mode === 'none'
      ? 'NO differential privacy: model updates are sent without noise'
      : `${p.mode === 'dp-sgd' ? 'DP-SGD (unit: one record)' : p.noise === 'distributed' ? 'distributed DP-FedAvg (unit: the whole silo; each silo adds its share of discrete Gaussian noise before masking, sized so any t shares carry the whole noise)' : 'DP-FedAvg (unit: the whole silo)'}; target ε = ${p.targetEpsilon}, δ = ${p.delta}, clipping norm ${p.clipNorm}, noise multiplier ${p.noiseMultiplier}`;
  const withoutDp = releasedWithoutDp(plan);
  return [
    `study:        ${plan.name}`,
    `purpose:      ${plan.purpose}`,
    `model:        ${model}`,
    ...describeData(plan.schema),
    `training:     ${t.rounds} rounds × ${t.localEpochs} local epochs, batch ${t.batchSize}${p.mode === 'dp-sgd' ? ' (normaliser of the noisy gradient sum)' : ''}, learning rate ${t.learningRate}, ${describeAlgorithm(t)}, server optimizer ${t.serverOptimizer.kind}`,
    `aggregation:  ${describeAggregation(plan)}`,
    `screening:    ${describeScreening(plan)}`,
    ...(plan.secureAggregation ? [`secure agg.:  ${describeSecureAggregation(plan)}`] : []),
    ...(plan.personalization ? [`personalize:  ${describePersonalization(plan)}`] : []),
    `privacy:      ${privacy}`,
    `releases:     ${describeRelease(plan)}`,
    `without DP:   ${withoutDp.length === 0 ? 'nothing' : withoutDp.join('; ')}`,
    `participants: ${plan.silos.length} silos invited, at least ${plan.participation.minSilosPerRound} per round`,
    ...(plan.model.kind === 'network' ? ['layers:', ...layerTableLines(plan.model.network).map((l) => `  ${l}`)] : []),
  ];
}

/** The model a plan describes, in the shape the ML registry takes (`@tessera/ml` parseModelSpec). */
export type PlannedModelSpec =
  | { kind: 'logistic-regression'; inputDim: number }
  | { kind: 'mlp'; inputDim: number; hiddenLayers: number[]; activation: 'relu' | 'tanh'; task: 'binary' };

/**
 * The registry model of a 'logistic-regression' or 'mlp' plan. Those plans keep their bytes (and hashes) and train as
 * they always did; a 'network' plan has no registry model (planNetwork gives its spec), and asking for one is a bug.
 */
export function modelSpecOf(plan: StudyPlan): PlannedModelSpec {
  if (plan.model.kind === 'network' || isImageSchema(plan.schema)) {
    throw new Error('a network plan has no registry model spec: use planNetwork');
  }
  const inputDim = encodedFeatureCount(plan.schema);
  return plan.model.kind === 'mlp'
    ? {
        kind: 'mlp',
        inputDim,
        hiddenLayers: [...plan.model.hiddenLayers],
        activation: plan.model.activation,
        task: 'binary',
      }
    : { kind: 'logistic-regression', inputDim };
}
