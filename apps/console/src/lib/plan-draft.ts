import {
  HEART_DISEASE_SCHEMA,
  isImageSchema,
  type DataSchema,
  type FeatureColumn,
  type ImageSchema,
  type ReleasePlan,
  type StudyPlan,
} from '@tessera/protocol';

// The study wizard edits a draft: the plan's shape with every number and list kept as the text the person typed,
// so a half-typed value is never lost. draftToPlan turns it into a candidate plan that studyPlanProblems judges;
// the wizard shows each problem at the field it names.

/** Binary rules, 'class' (multiclass: `values` lists the classes in order) and 'value' (regression: the number). */
export type LabelOperator = '>' | '>=' | '<' | '<=' | '==' | '!=' | 'in' | 'class' | 'value';
export type ServerOptimizerKind = 'fedavg' | 'fedavgm' | 'fedadam' | 'fedyogi' | 'fedadagrad';
export type PrivacyMode = 'none' | 'dp-sgd' | 'dp-fedavg';

export interface FeatureDraft {
  name: string;
  type: 'numeric' | 'categorical';
  /** Comma-separated levels (categorical only). */
  levels: string;
  /**
   * Declared scaling of a numeric feature, encoded value (x − center) / scale, in the column's own unit. Both empty:
   * no scaling. Declared, never computed from a silo's file: see FeatureColumn in @tessera/protocol.
   */
  center: string;
  scale: string;
  /** The value (numeric) or level (categorical) that replaces a missing cell; part of the plan only with 'impute'. */
  impute: string;
}

export type EvaluationReleaseMode = 'none' | 'noisy' | 'exact';

/** The release section of the plan: what a silo sends besides its update (ReleasePlan in @tessera/protocol). */
export interface ReleaseDraft {
  evaluation: EvaluationReleaseMode;
  /** 'noisy' and 'exact': the final model only, or also each round's input model. */
  evaluationRounds: 'final' | 'every';
  /** 'noisy': bins of the score histograms, 2 to 20. */
  scoreBins: string;
  trainingExamples: 'none' | 'exact';
  /**
   * False while the release is the default of the privacy mode (and follows it when the mode changes): a designer
   * who turns DP on must not keep, unnoticed, the exact releases that were the default without DP. True once the
   * designer chose a release themselves.
   */
  chosen: boolean;
}

/** How the hub combines updates, and screens them (AggregationPlan and ScreeningPlan in @tessera/protocol). */
export interface AggregationDraft {
  kind: AggregatorKind;
  /** Trimmed mean: β, the fraction trimmed from each end of every coordinate. */
  trimFraction: string;
  /** Krum: f, the Byzantine updates tolerated. */
  byzantine: string;
  /** Krum: how many best-scored updates are averaged (empty: 1, Krum itself; more: Multi-Krum). */
  selected: string;
  /** Geometric median: stopping tolerance and iteration cap (empty: the library's 1e-6 and 100). */
  tolerance: string;
  maxIterations: string;
  normBound: 'none' | 'fixed' | 'median-multiple';
  maxNorm: string;
  multiplier: string;
  screening: boolean;
  threshold: string;
  exclude: boolean;
}

/**
 * The plan's optional secure aggregation (SecureAggregationPlan in @tessera/protocol, docs/secure-aggregation.md):
 * off, the plan has no `secureAggregation` key.
 */
export interface SecureAggregationDraft {
  enabled: boolean;
  /** Shamir threshold t. */
  threshold: string;
  /** Neighbours per silo k; empty: the complete graph (k = n − 1). */
  neighbourCount: string;
  modulusBits: string;
  /** The L2 norm C every silo clips its update to. */
  clipNorm: string;
}

export type AggregatorKind = 'fedavg' | 'coordinate-median' | 'trimmed-mean' | 'krum' | 'geometric-median';

export interface PlanDraft {
  name: string;
  purpose: string;
  /**
   * 'network': a declarative network (tessera.network/1), kept as the JSON text the designer pasted or a preset
   * filled in; the plan carries it parsed. The registry's two models keep their own fields.
   */
  model: {
    kind: 'logistic-regression' | 'mlp' | 'network';
    hiddenLayers: string;
    activation: 'relu' | 'tanh';
    network?: string;
  };
  /**
   * An image study's schema, carried unchanged when a plan with one is edited (the wizard edits tabular schemas
   * only; an image schema is written as JSON, docs/silo-guide.md). Absent for tabular plans.
   */
  imageSchema?: ImageSchema;
  schema: {
    /** True when the data files start with a header row (then `columns` is not part of the plan). */
    hasHeader: boolean;
    columns: string;
    missingValues: string;
    features: FeatureDraft[];
    label: {
      column: string;
      operator: LabelOperator;
      threshold: string;
      values: string;
      /** A regression label's declared scaling, carried unchanged (the wizard has no field for it). */
      scaling?: { center: number; scale: number };
    };
    missing: 'drop-rows' | 'impute';
    testFraction: string;
    /** Key of the record hash that splits training from test records (public, printable ASCII, 8–128). */
    splitSalt: string;
  };
  training: {
    rounds: string;
    localEpochs: string;
    batchSize: string;
    learningRate: string;
    algorithm: 'fedavg' | 'fedprox' | 'scaffold';
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
    /** DP-FedAvg only: each silo adds its share of the noise under secure aggregation (plan: noise 'distributed'). */
    distributed: boolean;
  };
  participation: {
    minSilosPerRound: string;
    roundDeadlineSeconds: string;
    maxRoundRetries: string;
    onSiloFailure: 'continue' | 'fail-study';
  };
  release: ReleaseDraft;
  aggregation: AggregationDraft;
  secureAggregation: SecureAggregationDraft;
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

  const column = d.schema.label.column.trim();
  const operator = d.schema.label.operator;
  const label =
    operator === 'in'
      ? { column, operator: 'in', values: listOf(d.schema.label.values) }
      : operator === 'class'
        ? { column, operator: 'class', classes: listOf(d.schema.label.values) }
        : operator === 'value'
          ? { column, operator: 'value', ...(d.schema.label.scaling ? { scaling: d.schema.label.scaling } : {}) }
          : { column, operator, threshold: numberOf(d.schema.label.threshold) };
  const imputing = d.schema.missing === 'impute';
  const schema: Record<string, unknown> = {
    features: d.schema.features.map((f) => featureToPlan(f, imputing)),
    label,
    missing: d.schema.missing,
    split: { testFraction: numberOf(d.schema.testFraction), salt: d.schema.splitSalt.trim() },
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
            ...(p.distributed ? { noise: 'distributed' } : {}),
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
        : d.model.kind === 'network'
          ? { kind: 'network', network: networkOfText(d.model.network ?? '') }
          : { kind: 'logistic-regression' },
    schema: d.imageSchema ? { ...d.imageSchema, label } : schema,
    training,
    privacy,
    participation: {
      minSilosPerRound: numberOf(d.participation.minSilosPerRound),
      roundDeadlineSeconds: numberOf(d.participation.roundDeadlineSeconds),
      maxRoundRetries: numberOf(d.participation.maxRoundRetries),
      onSiloFailure: d.participation.onSiloFailure,
    },
    release: releaseToPlan(d.release),
    ...aggregationToPlan(d.aggregation),
    ...secureAggregationToPlan(d.secureAggregation),
    silos: [...d.silos],
  };
}

/**
 * The plan's `aggregation` and `screening`, each only when chosen: FedAvg without a bound and no screening is the
 * plan without either key, exactly as a plan made before the options (same bytes, same hash).
 */
function aggregationToPlan(a: AggregationDraft): Record<string, unknown> {
  const optional = (key: string, text: string) => (text.trim() === '' ? {} : { [key]: numberOf(text) });
  const aggregator =
    a.kind === 'trimmed-mean'
      ? { kind: a.kind, trimFraction: numberOf(a.trimFraction) }
      : a.kind === 'krum'
        ? { kind: a.kind, byzantine: numberOf(a.byzantine), ...optional('selected', a.selected) }
        : a.kind === 'geometric-median'
          ? { kind: a.kind, ...optional('tolerance', a.tolerance), ...optional('maxIterations', a.maxIterations) }
          : { kind: a.kind };
  const normBound =
    a.normBound === 'fixed'
      ? { mode: 'fixed', maxNorm: numberOf(a.maxNorm) }
      : a.normBound === 'median-multiple'
        ? { mode: 'median-multiple', multiplier: numberOf(a.multiplier) }
        : null;
  const out: Record<string, unknown> = {};
  if (a.kind !== 'fedavg' || normBound) out.aggregation = { aggregator, ...(normBound ? { normBound } : {}) };
  if (a.screening) out.screening = { threshold: numberOf(a.threshold), exclude: a.exclude };
  return out;
}

/** What the aggregation draft holds before anything is chosen: FedAvg, no bound, no screening. */
export const DEFAULT_AGGREGATION: AggregationDraft = {
  kind: 'fedavg',
  trimFraction: '0.1',
  byzantine: '1',
  selected: '',
  tolerance: '',
  maxIterations: '',
  normBound: 'none',
  maxNorm: '1',
  multiplier: '3',
  screening: false,
  threshold: '3.5',
  exclude: false,
};

/** A plan's aggregation and screening as the wizard's draft. */
function aggregationToDraft(plan: Pick<StudyPlan, 'aggregation' | 'screening'>): AggregationDraft {
  const a = plan.aggregation?.aggregator;
  const bound = plan.aggregation?.normBound;
  const s = plan.screening;
  return {
    ...DEFAULT_AGGREGATION,
    kind: a?.kind ?? 'fedavg',
    ...(a?.kind === 'trimmed-mean' ? { trimFraction: String(a.trimFraction) } : {}),
    ...(a?.kind === 'krum' ? { byzantine: String(a.byzantine), selected: text(a.selected) } : {}),
    ...(a?.kind === 'geometric-median' ? { tolerance: text(a.tolerance), maxIterations: text(a.maxIterations) } : {}),
    normBound: bound?.mode ?? 'none',
    ...(bound?.mode === 'fixed' ? { maxNorm: String(bound.maxNorm) } : {}),
    ...(bound?.mode === 'median-multiple' ? { multiplier: String(bound.multiplier) } : {}),
    screening: s !== undefined,
    ...(s ? { threshold: String(s.threshold), exclude: s.exclude } : {}),
  };
}

/** The plan's `secureAggregation` only when opted in (off: the plan as before the option, same bytes, same hash). */
function secureAggregationToPlan(sa: SecureAggregationDraft): Record<string, unknown> {
  if (!sa.enabled) return {};
  return {
    secureAggregation: {
      threshold: numberOf(sa.threshold),
      ...(sa.neighbourCount.trim() === '' ? {} : { neighbourCount: numberOf(sa.neighbourCount) }),
      modulusBits: numberOf(sa.modulusBits),
      clipNorm: numberOf(sa.clipNorm),
    },
  };
}

/** Secure aggregation before it is chosen: off; once on, the complete graph, 32-bit sums, clip norm 1. */
export const DEFAULT_SECURE_AGGREGATION: SecureAggregationDraft = {
  enabled: false,
  threshold: '',
  neighbourCount: '',
  modulusBits: '32',
  clipNorm: '1',
};

/**
 * The threshold to propose for k neighbours per silo: ⌊k/2⌋ + 1, at least 2. It is recommendedThreshold(k) of
 * @tessera/secagg without colluding neighbours (a hub that lies about who dropped cannot rebuild both secrets of a
 * silo), restated because that library runs on node:crypto and is not part of the console's bundle.
 */
export function proposedSecureAggregationThreshold(neighbourCount: number): number {
  return Math.max(2, Math.floor(neighbourCount / 2) + 1);
}

function secureAggregationToDraft(plan: Pick<StudyPlan, 'secureAggregation'>): SecureAggregationDraft {
  const sa = plan.secureAggregation;
  if (!sa) return { ...DEFAULT_SECURE_AGGREGATION };
  return {
    enabled: true,
    threshold: String(sa.threshold),
    neighbourCount: text(sa.neighbourCount),
    modulusBits: String(sa.modulusBits),
    clipNorm: String(sa.clipNorm),
  };
}

/**
 * The pasted network spec parsed; text that is not JSON stays text, so the plan check reports it at model.network
 * ("spec: expected object") instead of the wizard inventing a value.
 */
export function networkOfText(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/**
 * One feature as the plan declares it. Imputation values are part of the plan only when the schema imputes (the
 * wizard hides them otherwise, and a hidden value must not reach the steward). Scaling is declared when either
 * constant is typed, so a half-typed pair is reported rather than silently dropped.
 */
function featureToPlan(f: FeatureDraft, imputing: boolean): Record<string, unknown> {
  const impute = f.impute.trim();
  if (f.type === 'categorical') {
    const out: Record<string, unknown> = { name: f.name.trim(), type: 'categorical', levels: listOf(f.levels) };
    if (imputing && impute !== '') out.impute = impute;
    return out;
  }
  const out: Record<string, unknown> = { name: f.name.trim(), type: 'numeric' };
  if (f.center.trim() !== '' || f.scale.trim() !== '') {
    out.scaling = { center: numberOf(f.center), scale: numberOf(f.scale) };
  }
  if (imputing && impute !== '') out.impute = numberOf(impute);
  return out;
}

function releaseToPlan(r: ReleaseDraft): Record<string, unknown> {
  const evaluation =
    r.evaluation === 'none'
      ? { mode: 'none' }
      : r.evaluation === 'noisy'
        ? { mode: 'noisy', rounds: r.evaluationRounds, scoreBins: numberOf(r.scoreBins) }
        : { mode: 'exact', rounds: r.evaluationRounds };
  return { evaluation, trainingExamples: r.trainingExamples };
}

/** Score bins of a new noisy evaluation (the hub's demo plan uses the same). */
const DEFAULT_SCORE_BINS = 4;

/**
 * What a plan releases by default for each privacy mode (the hub's demo plan makes the same choice): with DP-SGD a
 * noisy evaluation of the final model and no record count, so nothing leaves a silo without noise; with DP-FedAvg
 * (silo-level, noisy evaluation does not apply) nothing; without DP the exact metrics every round and the record
 * counts, which the steward sees listed as released without differential privacy.
 */
export function defaultReleaseDraft(mode: PrivacyMode): ReleaseDraft {
  switch (mode) {
    case 'dp-sgd':
      return {
        evaluation: 'noisy',
        evaluationRounds: 'final',
        scoreBins: String(DEFAULT_SCORE_BINS),
        trainingExamples: 'none',
        chosen: false,
      };
    case 'dp-fedavg':
      return {
        evaluation: 'none',
        evaluationRounds: 'final',
        scoreBins: String(DEFAULT_SCORE_BINS),
        trainingExamples: 'none',
        chosen: false,
      };
    case 'none':
      return {
        evaluation: 'exact',
        evaluationRounds: 'every',
        scoreBins: String(DEFAULT_SCORE_BINS),
        trainingExamples: 'exact',
        chosen: false,
      };
  }
}

/** The draft after the privacy mode changed: a release nobody chose follows the new mode's default. */
export function withPrivacyMode(d: PlanDraft, mode: PrivacyMode): PlanDraft {
  return { ...d, privacy: { ...d.privacy, mode }, release: d.release.chosen ? d.release : defaultReleaseDraft(mode) };
}

function releaseToDraft(release: ReleasePlan, mode: PrivacyMode): ReleaseDraft {
  const e = release.evaluation;
  const draft: ReleaseDraft = {
    evaluation: e.mode,
    evaluationRounds: e.mode === 'none' ? 'final' : e.rounds,
    scoreBins: e.mode === 'noisy' ? String(e.scoreBins) : String(DEFAULT_SCORE_BINS),
    trainingExamples: release.trainingExamples,
    chosen: true,
  };
  // A plan whose release is its mode's default keeps following the mode, like a new draft. (Both sides come from
  // releaseToPlan, which builds its objects in one key order, so comparing their JSON compares their content.)
  const isDefault = JSON.stringify(releaseToPlan(draft)) === JSON.stringify(releaseToPlan(defaultReleaseDraft(mode)));
  return { ...draft, chosen: !isDefault };
}

/**
 * A fresh key for the record split: 128 random bits from the browser's CSPRNG (crypto.getRandomValues), as 32 hex
 * digits. It is public (the privacy guarantee holds for every salt); a new one per study keeps studies' splits
 * independent of each other.
 */
export function randomSplitSalt(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

const text = (n: number | undefined): string => (n === undefined ? '' : String(n));

function labelToDraft(label: DataSchema['label']): PlanDraft['schema']['label'] {
  switch (label.operator) {
    case 'in':
      return { column: label.column, operator: 'in', threshold: '', values: label.values.join(', ') };
    case 'class':
      return { column: label.column, operator: 'class', threshold: '', values: label.classes.join(', ') };
    case 'value':
      return {
        column: label.column,
        operator: 'value',
        threshold: '',
        values: '',
        ...(label.scaling ? { scaling: { ...label.scaling } } : {}),
      };
    default:
      return { column: label.column, operator: label.operator, threshold: String(label.threshold), values: '' };
  }
}

/** A plan's feature schema as the wizard's editable draft (text fields); an image schema keeps only its label. */
function schemaToDraft(schema: DataSchema): PlanDraft['schema'] {
  const label = schema.label;
  if (isImageSchema(schema)) {
    return {
      hasHeader: true,
      columns: '',
      missingValues: (schema.missingValues ?? []).join(', '),
      features: [],
      label: labelToDraft(label),
      missing: 'drop-rows',
      testFraction: String(schema.split.testFraction),
      splitSalt: schema.split.salt,
    };
  }
  return {
    hasHeader: schema.columns === undefined,
    columns: (schema.columns ?? []).join(', '),
    missingValues: (schema.missingValues ?? []).join(', '),
    features: schema.features.map(featureToDraft),
    label: labelToDraft(label),
    missing: schema.missing,
    testFraction: String(schema.split.testFraction),
    splitSalt: schema.split.salt,
  };
}

function featureToDraft(f: FeatureColumn): FeatureDraft {
  const blank: FeatureDraft = { name: f.name, type: f.type, levels: '', center: '', scale: '', impute: '' };
  if (f.type === 'categorical') return { ...blank, levels: f.levels.join(', '), impute: f.impute ?? '' };
  return {
    ...blank,
    center: f.scaling ? String(f.scaling.center) : '',
    scale: f.scaling ? String(f.scaling.scale) : '',
    impute: f.impute === undefined ? '' : String(f.impute),
  };
}

/** An empty feature row. */
export function blankFeature(): FeatureDraft {
  return { name: '', type: 'numeric', levels: '', center: '', scale: '', impute: '' };
}

/** A draft of an existing plan (a new version of a study's plan starts from the current one). */
export function planToDraft(plan: StudyPlan): PlanDraft {
  const t = plan.training;
  const p = plan.privacy;
  return {
    name: plan.name,
    purpose: plan.purpose,
    model:
      plan.model.kind === 'mlp'
        ? { kind: 'mlp', hiddenLayers: plan.model.hiddenLayers.join(', '), activation: plan.model.activation }
        : plan.model.kind === 'network'
          ? {
              kind: 'network',
              hiddenLayers: '16',
              activation: 'relu',
              network: JSON.stringify(plan.model.network, null, 2),
            }
          : { kind: 'logistic-regression', hiddenLayers: '16', activation: 'relu' },
    ...(isImageSchema(plan.schema) ? { imageSchema: structuredClone(plan.schema) } : {}),
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
            distributed: p.mode === 'dp-fedavg' && p.noise === 'distributed',
          },
    participation: {
      minSilosPerRound: String(plan.participation.minSilosPerRound),
      roundDeadlineSeconds: String(plan.participation.roundDeadlineSeconds),
      maxRoundRetries: String(plan.participation.maxRoundRetries),
      onSiloFailure: plan.participation.onSiloFailure,
    },
    release: releaseToDraft(plan.release, p.mode),
    aggregation: aggregationToDraft(plan),
    secureAggregation: secureAggregationToDraft(plan),
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
  distributed: false,
};

/**
 * A new study starts from this: the Fed-Heart-Disease schema with its declared scaling constants, logistic
 * regression, no DP (with its default releases), no invited silo yet, and a fresh random split salt.
 */
export function defaultDraft(salt: string = randomSplitSalt()): PlanDraft {
  return {
    name: '',
    purpose: '',
    model: { kind: 'logistic-regression', hiddenLayers: '16', activation: 'relu' },
    // The Fed-Heart-Disease schema, defined once in @tessera/protocol (the same the demo uses), split by this
    // study's own salt.
    schema: { ...schemaToDraft(HEART_DISEASE_SCHEMA), splitSalt: salt },
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
    release: defaultReleaseDraft('none'),
    aggregation: { ...DEFAULT_AGGREGATION },
    secureAggregation: { ...DEFAULT_SECURE_AGGREGATION },
    silos: [],
  };
}
