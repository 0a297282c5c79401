/**
 * Trace records: every transformation applied to an update or to the aggregate leaves one, so the hub can write
 * "what was applied, with which parameters" into its audit trail (the NVFlare DXO-filter idea). Plain JSON-safe
 * objects: numbers and strings only.
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

export type AggregationTrace = WeightTrace | ClipTrace | MeanTrace | NoiseTrace | ServerStepTrace;
