import { HEART_DISEASE_SCHEMA, type FeatureSchema, type StudyPlan } from '@tessera/protocol';

// The study wizard edits a draft: the plan's shape with every number and list kept as the text the person typed,
// so a half-typed value is never lost. draftToPlan turns it into a candidate plan that studyPlanProblems judges;
// the wizard shows each problem at the field it names.

export type LabelOperator = '>' | '>=' | '<' | '<=' | '==' | '!=' | 'in';
export type ServerOptimizerKind = 'fedavg' | 'fedavgm' | 'fedadam' | 'fedyogi' | 'fedadagrad';
export type PrivacyMode = 'none' | 'dp-sgd' | 'dp-fedavg';

export interface FeatureDraft {
  name: string;
  type: 'numeric' | 'categorical';
  /** Comma-separated levels (categorical only). */
  levels: string;
}

export interface PlanDraft {
  name: string;
  purpose: string;
  model: { kind: 'logistic-regression' | 'mlp'; hiddenLayers: string; activation: 'relu' | 'tanh' };
  schema: {
    /** True when the data files start with a header row (then `columns` is not part of the plan). */
    hasHeader: boolean;
    columns: string;
    missingValues: string;
    features: FeatureDraft[];
    label: { column: string; operator: LabelOperator; threshold: string; values: string };
    missing: 'drop-rows' | 'impute-mean';
    testFraction: string;
    splitSeed: string;
    stratify: boolean;
    standardize: boolean;
  };
  training: {
    rounds: string;
    localEpochs: string;
    batchSize: string;
    learningRate: string;
    algorithm: 'fedavg' | 'fedprox';
    proximalMu: string;
    serverOptimizer: {
      kind: ServerOptimizerKind;
      learningRate: string;
      momentum: string;
      beta1: string;
      beta2: string;
      tau: string;
    };
    initSeed: string;
  };
  privacy: {
    mode: PrivacyMode;
    targetEpsilon: string;
    delta: string;
    clipNorm: string;
    /** 'derive': the hub calibrates σ from the target ε; 'fixed': σ as given. */
    noise: 'derive' | 'fixed';
    noiseMultiplier: string;
    samplingRate: string;
  };
  participation: {
    minSilosPerRound: string;
    roundDeadlineSeconds: string;
    maxRoundRetries: string;
    onSiloFailure: 'continue' | 'fail-study';
  };
  silos: string[];
}

export const ADAPTIVE_OPTIMIZERS: readonly ServerOptimizerKind[] = ['fedadam', 'fedyogi', 'fedadagrad'];

/** Text to number: empty stays absent (the schema says "required"), anything else is Number() (NaN is reported). */
export function numberOf(text: string): number | undefined {
  const t = text.trim();
  return t === '' ? undefined : Number(t);
}

/** "a, b ,c" → ['a', 'b', 'c'] (empty items dropped). */
export function listOf(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function optionalNumber(text: string): number | undefined {
  return numberOf(text);
}

/** The candidate plan a draft describes (not validated: studyPlanProblems says what is wrong with it). */
export function draftToPlan(d: PlanDraft): unknown {
  const opt = d.training.serverOptimizer;
  const serverOptimizer: Record<string, unknown> = { kind: opt.kind, learningRate: numberOf(opt.learningRate) };
  if (opt.kind === 'fedavgm' && opt.momentum.trim() !== '') serverOptimizer.momentum = optionalNumber(opt.momentum);
  if (ADAPTIVE_OPTIMIZERS.includes(opt.kind)) {
    if (opt.beta1.trim() !== '') serverOptimizer.beta1 = optionalNumber(opt.beta1);
    if (opt.beta2.trim() !== '') serverOptimizer.beta2 = optionalNumber(opt.beta2);
    if (opt.tau.trim() !== '') serverOptimizer.tau = optionalNumber(opt.tau);
  }
  const training: Record<string, unknown> = {
    rounds: numberOf(d.training.rounds),
    localEpochs: numberOf(d.training.localEpochs),
    batchSize: numberOf(d.training.batchSize),
    learningRate: numberOf(d.training.learningRate),
    algorithm: d.training.algorithm,
    serverOptimizer,
    initSeed: numberOf(d.training.initSeed),
  };
  if (d.training.algorithm === 'fedprox' && d.training.proximalMu.trim() !== '') {
    training.proximalMu = numberOf(d.training.proximalMu);
  }

  const label =
    d.schema.label.operator === 'in'
      ? { column: d.schema.label.column.trim(), operator: 'in', values: listOf(d.schema.label.values) }
      : {
          column: d.schema.label.column.trim(),
          operator: d.schema.label.operator,
          threshold: numberOf(d.schema.label.threshold),
        };
  const schema: Record<string, unknown> = {
    features: d.schema.features.map((f) =>
      f.type === 'numeric'
        ? { name: f.name.trim(), type: 'numeric' }
        : { name: f.name.trim(), type: 'categorical', levels: listOf(f.levels) },
    ),
    label,
    missing: d.schema.missing,
    split: {
      testFraction: numberOf(d.schema.testFraction),
      seed: numberOf(d.schema.splitSeed),
      stratify: d.schema.stratify,
    },
    standardize: d.schema.standardize,
  };
  if (!d.schema.hasHeader) schema.columns = listOf(d.schema.columns);
  const missingValues = listOf(d.schema.missingValues);
  if (missingValues.length > 0) schema.missingValues = missingValues;

  const p = d.privacy;
  const noiseMultiplier = p.noise === 'derive' ? 'derive' : numberOf(p.noiseMultiplier);
  const privacy =
    p.mode === 'none'
      ? { mode: 'none' }
      : p.mode === 'dp-sgd'
        ? {
            mode: 'dp-sgd',
            unit: 'record',
            targetEpsilon: numberOf(p.targetEpsilon),
            delta: numberOf(p.delta),
            clipNorm: numberOf(p.clipNorm),
            noiseMultiplier,
            samplingRate: numberOf(p.samplingRate),
          }
        : {
            mode: 'dp-fedavg',
            unit: 'silo',
            targetEpsilon: numberOf(p.targetEpsilon),
            delta: numberOf(p.delta),
            clipNorm: numberOf(p.clipNorm),
            noiseMultiplier,
          };

  return {
    name: d.name.trim(),
    purpose: d.purpose.trim(),
    model:
      d.model.kind === 'mlp'
        ? {
            kind: 'mlp',
            hiddenLayers: listOf(d.model.hiddenLayers).map((x) => Number(x)),
            activation: d.model.activation,
          }
        : { kind: 'logistic-regression' },
    schema,
    training,
    privacy,
    participation: {
      minSilosPerRound: numberOf(d.participation.minSilosPerRound),
      roundDeadlineSeconds: numberOf(d.participation.roundDeadlineSeconds),
      maxRoundRetries: numberOf(d.participation.maxRoundRetries),
      onSiloFailure: d.participation.onSiloFailure,
    },
    silos: [...d.silos],
  };
}

const text = (n: number | undefined): string => (n === undefined ? '' : String(n));

/** A draft of an existing plan (a new version of a study's plan starts from the current one). */
/** A plan's feature schema as the wizard's editable draft (text fields). */
function schemaToDraft(schema: FeatureSchema): PlanDraft['schema'] {
  const label = schema.label;
  return {
    hasHeader: schema.columns === undefined,
    columns: (schema.columns ?? []).join(', '),
    missingValues: (schema.missingValues ?? []).join(', '),
    features: schema.features.map((f) =>
      f.type === 'numeric'
        ? { name: f.name, type: 'numeric', levels: '' }
        : { name: f.name, type: 'categorical', levels: f.levels.join(', ') },
    ),
    label:
      label.operator === 'in'
        ? { column: label.column, operator: 'in', threshold: '', values: label.values.join(', ') }
        : { column: label.column, operator: label.operator, threshold: String(label.threshold), values: '' },
    missing: schema.missing,
    testFraction: String(schema.split.testFraction),
    splitSeed: String(schema.split.seed),
    stratify: schema.split.stratify,
    standardize: schema.standardize,
  };
}

export function planToDraft(plan: StudyPlan): PlanDraft {
  const t = plan.training;
  const p = plan.privacy;
  return {
    name: plan.name,
    purpose: plan.purpose,
    model:
      plan.model.kind === 'mlp'
        ? { kind: 'mlp', hiddenLayers: plan.model.hiddenLayers.join(', '), activation: plan.model.activation }
        : { kind: 'logistic-regression', hiddenLayers: '16', activation: 'relu' },
    schema: schemaToDraft(plan.schema),
    training: {
      rounds: String(t.rounds),
      localEpochs: String(t.localEpochs),
      batchSize: String(t.batchSize),
      learningRate: String(t.learningRate),
      algorithm: t.algorithm,
      proximalMu: text(t.proximalMu),
      serverOptimizer: {
        kind: t.serverOptimizer.kind,
        learningRate: String(t.serverOptimizer.learningRate),
        momentum: text(t.serverOptimizer.momentum),
        beta1: text(t.serverOptimizer.beta1),
        beta2: text(t.serverOptimizer.beta2),
        tau: text(t.serverOptimizer.tau),
      },
      initSeed: String(t.initSeed),
    },
    privacy:
      p.mode === 'none'
        ? { ...DEFAULT_PRIVACY, mode: 'none' }
        : {
            mode: p.mode,
            targetEpsilon: String(p.targetEpsilon),
            delta: String(p.delta),
            clipNorm: String(p.clipNorm),
            noise: p.noiseMultiplier === 'derive' ? 'derive' : 'fixed',
            noiseMultiplier: p.noiseMultiplier === 'derive' ? '' : String(p.noiseMultiplier),
            samplingRate: p.mode === 'dp-sgd' ? String(p.samplingRate) : DEFAULT_PRIVACY.samplingRate,
          },
    participation: {
      minSilosPerRound: String(plan.participation.minSilosPerRound),
      roundDeadlineSeconds: String(plan.participation.roundDeadlineSeconds),
      maxRoundRetries: String(plan.participation.maxRoundRetries),
      onSiloFailure: plan.participation.onSiloFailure,
    },
    silos: [...plan.silos],
  };
}

const DEFAULT_PRIVACY: PlanDraft['privacy'] = {
  mode: 'dp-sgd',
  targetEpsilon: '3',
  delta: '1e-5',
  clipNorm: '1',
  noise: 'derive',
  noiseMultiplier: '1.1',
  samplingRate: '0.05',
};

/** A new study starts from this: the Fed-Heart-Disease schema, logistic regression, no invited silo yet. */
export function defaultDraft(): PlanDraft {
  return {
    name: '',
    purpose: '',
    model: { kind: 'logistic-regression', hiddenLayers: '16', activation: 'relu' },
    // The Fed-Heart-Disease schema, defined once in @tessera/protocol (the same the demo uses).
    schema: schemaToDraft(HEART_DISEASE_SCHEMA),
    training: {
      rounds: '10',
      localEpochs: '5',
      batchSize: '16',
      learningRate: '0.05',
      algorithm: 'fedavg',
      proximalMu: '0.01',
      serverOptimizer: {
        kind: 'fedadam',
        learningRate: '0.1',
        momentum: '0.9',
        beta1: '0.9',
        beta2: '0.99',
        tau: '0.001',
      },
      initSeed: '42',
    },
    privacy: { ...DEFAULT_PRIVACY, mode: 'none' },
    participation: {
      minSilosPerRound: '2',
      roundDeadlineSeconds: '60',
      maxRoundRetries: '1',
      onSiloFailure: 'continue',
    },
    silos: [],
  };
}
