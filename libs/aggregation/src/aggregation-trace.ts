/**
 * Trace records: every transformation applied to an update or to the aggregate leaves one, so the hub can write
 * "what was applied, with which parameters" into its audit trail (the NVFlare DXO-filter idea). Plain JSON-safe
 * objects: numbers, strings, booleans and arrays of numbers (per-update values, indexed like the round's inputs).
 */

/** The silo's reported weight and the weight the strategy actually used (DP-FedAvg uses 1 for every silo). */
export interface WeightTrace {
  readonly step: 'weight';
  readonly reportedWeight: number;
  readonly appliedWeight: number;
}

/** L2 clipping of one whole update: `factor` = min(1, S / norm) (slightly below for float32 rounding; see dp-fed-avg). */
export interface ClipTrace {
  readonly step: 'clip';
  /** L2 norm of the update as received. */
  readonly norm: number;
  /** S, the clipping bound (L2). */
  readonly clippingNorm: number;
  /** Multiplier applied to every coordinate; 1 when the update was already within S. */
  readonly factor: number;
}

/** The (weighted) mean over the accepted updates. */
export interface MeanTrace {
  readonly step: 'mean';
  readonly weighting: 'weighted' | 'unweighted';
  readonly count: number;
  readonly totalWeight: number;
  /** What the sum was divided by: totalWeight, or DP-FedAvg's fixed denominator. */
  readonly denominator: number;
}

/**
 * Gaussian noise added to every coordinate of the aggregate: exact discrete-Gaussian integers added to the float64 sum
 * rounded onto the lattice granularity·Z (@tessera/dp latticeNoise), then divided by the denominator.
 */
export interface NoiseTrace {
  readonly step: 'noise';
  readonly mechanism: 'discrete-gaussian-lattice';
  /** z: noise standard deviation relative to the clipping norm, on the sum. */
  readonly noiseMultiplier: number;
  readonly clippingNorm: number;
  /** The fixed denominator the noisy sum was divided by. */
  readonly denominator: number;
  /**
   * Standard deviation actually added to each coordinate of the mean: (the noise's stddev on the sum) / denominator,
   * at least z·(S + γ√m) / denominator (the lattice rounding is paid for in noise); 0 when z = 0.
   */
  readonly stddev: number;
  /** γ, the lattice spacing of the noisy sum (absent when z = 0: nothing was noised or rounded). */
  readonly granularity?: number;
}

/** One server optimizer step (Reddi et al. 2021, Algorithm 2; Hsu et al. 2019 for FedAvgM). */
export interface ServerStepTrace {
  readonly step: 'server-optimizer';
  readonly algorithm: ServerOptimizerAlgorithm;
  /** 1 for the first step applied by this optimizer state. */
  readonly round: number;
  readonly serverLearningRate: number;
  /** Algorithm hyperparameters (beta1, beta2, tau, momentum) as configured. */
  readonly hyperparameters: Readonly<Record<string, number>>;
}

export type ServerOptimizerAlgorithm = 'fedavg' | 'fedavgm' | 'fedadagrad' | 'fedadam' | 'fedyogi';

/** Coordinate-wise median of the round's updates (Yin et al. 2018). */
export interface CoordinateMedianTrace {
  readonly step: 'coordinate-median';
  readonly count: number;
}

/** Coordinate-wise trimmed mean (Yin et al. 2018): `trimmedEachSide` = ⌊β·n⌋ values dropped at each end. */
export interface TrimmedMeanTrace {
  readonly step: 'trimmed-mean';
  readonly count: number;
  readonly trimFraction: number;
  readonly trimmedEachSide: number;
}

/** Krum / Multi-Krum (Blanchard et al. 2017): which updates were averaged and every update's score. */
export interface KrumTrace {
  readonly step: 'krum';
  readonly count: number;
  /** f, the number of Byzantine updates the rule was configured to tolerate. */
  readonly byzantine: number;
  /** m: 1 for Krum, more for Multi-Krum. */
  readonly selectedCount: number;
  /** Indices (into the round's inputs) of the averaged updates, best score first. */
  readonly selected: readonly number[];
  /** Krum score of each input: the sum of its n − f − 2 smallest squared distances to the others. */
  readonly scores: readonly number[];
}

/** Smoothed Weiszfeld geometric median (Pillutla, Kakade, Harchaoui 2019, RFA). */
export interface GeometricMedianTrace {
  readonly step: 'geometric-median';
  readonly count: number;
  readonly weighting: 'weighted' | 'unweighted';
  /** Weiszfeld iterations run (each one reweighting step). */
  readonly iterations: number;
  /** true when the relative objective decrease fell to `tolerance` before `maxIterations`. */
  readonly converged: boolean;
  readonly tolerance: number;
  readonly maxIterations: number;
  /** ν: distances below it count as ν (parameter units), so no weight is infinite. */
  readonly smoothing: number;
  /** Σ αₖ‖z − uₖ‖ at the result (α normalised to sum 1). */
  readonly objective: number;
  /** Each input's share of the result: z = Σ coefficients[k]·uₖ. */
  readonly coefficients: readonly number[];
}

/**
 * Server-side norm bounding of the round: each update scaled to L2 ≤ `bound`; per-update ClipTrace records carry the
 * norms and factors. `bound` = maxNorm ('fixed') or multiplier × the round's median norm ('median-multiple').
 */
export interface NormBoundTrace {
  readonly step: 'norm-bound';
  readonly mode: 'fixed' | 'median-multiple';
  readonly bound: number;
  readonly medianNorm: number;
  /** Present in 'median-multiple' mode. */
  readonly multiplier?: number;
  /** Number of updates that were scaled down. */
  readonly clipped: number;
}

export type AggregationTrace =
  | WeightTrace
  | ClipTrace
  | MeanTrace
  | NoiseTrace
  | ServerStepTrace
  | CoordinateMedianTrace
  | TrimmedMeanTrace
  | KrumTrace
  | GeometricMedianTrace
  | NormBoundTrace;
