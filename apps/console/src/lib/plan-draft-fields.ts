import type { ImageSchema } from '@tessera/protocol';

// The draft's shape: every number and list of the plan kept as the text the person typed (plan-draft.ts turns it
// into a candidate plan), and the readings of that text every section shares.

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

/** A number the plan may leave out, as a text field: absent is ''. */
export const textOf = (n: number | undefined): string => (n === undefined ? '' : String(n));
