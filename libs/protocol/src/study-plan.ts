import { canonicalJson, sha256Hex } from '@tessera/canonical';
import { z } from 'zod';
import { inferNetworkShapes } from './network-spec-shapes';
import { NetworkSpecError, type NetworkSpec } from './network-spec-schema';
import { aggregationProblems } from './study-plan-aggregation';
import { SecureAggregationPlan, secureAggregationProblems } from './study-plan-secagg';
import { PersonalizationPlan, personalizationProblems } from './study-plan-personalization';
import { modelProblems, NetworkModelChoice, networkOfModel, networkProblem } from './study-plan-model';
import {
  DataSchema,
  encodedFeatureCount,
  type FeatureSchema,
  imageSchemaProblems,
  isImageSchema,
  tabularProblems,
} from './study-plan-schema';

export * from './study-plan-model';
export * from './study-plan-schema';
export * from './study-plan-description';

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
  DEFAULT_VALIDATION_FOLDS,
  describeCandidate,
  describePersonalization,
  localBaselineEpochs,
  PersonalizationPlan,
  personalizationModels,
  personalizationProblems,
  SELECTION_CANDIDATES,
  validationFoldsOf,
  type SelectionCandidate,
} from './study-plan-personalization';

const finitePositive = z.number().finite().positive();

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

/**
 * Float32 values in one silo's update for a model of `parameters` values: the model delta, and under SCAFFOLD the
 * control delta after it (ADR 0019).
 */
export function updateLengthOf(plan: Pick<StudyPlan, 'training'>, parameters: number): number {
  return plan.training.algorithm === 'scaffold' ? 2 * parameters : parameters;
}

/**
 * The hash a steward approves: SHA-256 of the RFC 8785 canonical JSON of { studyId, version, plan }. The study id
 * and version are inside, so an approval cannot be replayed onto another study or an older version.
 */
export function planHash(studyId: string, version: number, plan: StudyPlan): string {
  return sha256Hex(canonicalJson({ studyId, version, plan }));
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
