import { createHash } from 'node:crypto';
import { canonicalJson } from '@tessera/audit';
import { z } from 'zod';

const name = z.string().min(1).max(64);
const finitePositive = z.number().finite().positive();

export const FeatureColumn = z.discriminatedUnion('type', [
  z.object({ name, type: z.literal('numeric') }).strict(),
  z
    .object({
      name,
      type: z.literal('categorical'),
      // Every silo must produce the same encoded columns whatever values it happens to hold: levels are fixed.
      levels: z.array(z.string().min(1).max(64)).min(2).max(256),
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
]);

/** The feature schema: which columns, their encoding, the label, missing values, the local split and scaling. */
export const FeatureSchema = z
  .object({
    /** Column names in file order for headerless files; absent when the first row is a header. */
    columns: z.array(name).min(2).max(1024).optional(),
    missingValues: z.array(z.string().max(16)).max(16).optional(),
    features: z.array(FeatureColumn).min(1).max(1024),
    label: LabelRule,
    missing: z.enum(['drop-rows', 'impute-mean']),
    split: z
      .object({
        testFraction: z.number().gt(0).lt(1),
        seed: z
          .number()
          .int()
          .min(0)
          .max(2 ** 31 - 1),
        stratify: z.boolean(),
      })
      .strict(),
    standardize: z.boolean(),
  })
  .strict();
export type FeatureSchema = z.infer<typeof FeatureSchema>;

export const ModelChoice = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('logistic-regression') }).strict(),
  z
    .object({
      kind: z.literal('mlp'),
      hiddenLayers: z.array(z.number().int().min(1).max(4096)).min(1).max(8),
      activation: z.enum(['relu', 'tanh']),
    })
    .strict(),
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
    algorithm: z.enum(['fedavg', 'fedprox']),
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

/** Everything a data steward approves, byte for byte (after RFC 8785 canonicalization). */
export const StudyPlan = z
  .object({
    name: z.string().min(3).max(128),
    purpose: z.string().min(10).max(4000),
    model: ModelChoice,
    schema: FeatureSchema,
    training: TrainingPlan,
    privacy: PrivacyPlan,
    participation: ParticipationPlan,
    /** Invited silos (ids). Part of the plan: a steward approves who else takes part. */
    silos: z.array(z.string().uuid()).min(1).max(1000),
  })
  .strict();
export type StudyPlan = z.infer<typeof StudyPlan>;

/** Every problem with a plan, each naming its field path; empty when the plan is valid. */
export function studyPlanProblems(value: unknown): string[] {
  const parsed = StudyPlan.safeParse(value);
  const problems = parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.') || 'plan'}: ${i.message}`);
  if (parsed.success) problems.push(...semanticProblems(parsed.data));
  return problems;
}

function semanticProblems(plan: StudyPlan): string[] {
  const out: string[] = [];
  const featureNames = plan.schema.features.map((f) => f.name);
  const dup = featureNames.find((n, i) => featureNames.indexOf(n) !== i);
  if (dup) out.push(`schema.features: column "${dup}" appears twice`);
  if (featureNames.includes(plan.schema.label.column)) {
    out.push(`schema.label.column: "${plan.schema.label.column}" is also a feature`);
  }
  if (plan.schema.columns) {
    for (const n of [...featureNames, plan.schema.label.column]) {
      if (!plan.schema.columns.includes(n)) out.push(`schema.columns: does not list "${n}"`);
    }
  }
  if (plan.training.algorithm === 'fedprox' && plan.training.proximalMu === undefined) {
    out.push('training.proximalMu: is required with the fedprox algorithm');
  }
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
  return createHash('sha256').update(canonicalJson({ studyId, version, plan }), 'utf8').digest('hex');
}

/** A plan in words, for `tessera-agent studies show` and the console. */
export function describePlan(plan: StudyPlan): string[] {
  const t = plan.training;
  const p = plan.privacy;
  const model =
    plan.model.kind === 'mlp'
      ? `MLP, hidden layers ${plan.model.hiddenLayers.join('×')} (${plan.model.activation})`
      : 'logistic regression';
  const privacy =
    p.mode === 'none'
      ? 'NO differential privacy: model updates are sent without noise'
      : `${p.mode === 'dp-sgd' ? 'DP-SGD (unit: one record)' : 'DP-FedAvg (unit: the whole silo)'}; target ε = ${p.targetEpsilon}, δ = ${p.delta}, clipping norm ${p.clipNorm}, noise multiplier ${p.noiseMultiplier}`;
  return [
    `study:        ${plan.name}`,
    `purpose:      ${plan.purpose}`,
    `model:        ${model}`,
    `features:     ${plan.schema.features.map((f) => (f.type === 'numeric' ? f.name : `${f.name} (one of ${f.levels.join('/')})`)).join(', ')}`,
    `label:        ${plan.schema.label.column} ${plan.schema.label.operator} ${'threshold' in plan.schema.label ? plan.schema.label.threshold : plan.schema.label.values.join('/')}`,
    `missing:      ${plan.schema.missing}; held out for testing: ${Math.round(plan.schema.split.testFraction * 100)}%`,
    `training:     ${t.rounds} rounds × ${t.localEpochs} local epochs, batch ${t.batchSize}, learning rate ${t.learningRate}, ${t.algorithm}, server optimizer ${t.serverOptimizer.kind}`,
    `privacy:      ${privacy}`,
    `participants: ${plan.silos.length} silos invited, at least ${plan.participation.minSilosPerRound} per round`,
  ];
}

/** The model a plan describes, in the shape the ML registry takes (`@tessera/ml` parseModelSpec). */
export type PlannedModelSpec =
  | { kind: 'logistic-regression'; inputDim: number }
  | { kind: 'mlp'; inputDim: number; hiddenLayers: number[]; activation: 'relu' | 'tanh'; task: 'binary' };

export function modelSpecOf(plan: StudyPlan): PlannedModelSpec {
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
