import { AggregationErrorCode, AggregationException } from './aggregation.exception';
import type { ServerOptimizerAlgorithm, ServerStepTrace } from './aggregation-trace';
import { decodeOptimizerState, encodeOptimizerState } from './optimizer-state-codec';
import { assertFiniteSquaredNorm, assertLength } from './update-validation';

/** The new global model and the record of how it was made. */
export interface ServerStep {
  readonly weights: Float32Array;
  readonly trace: ServerStepTrace;
}

/**
 * Turns the round's aggregate delta into the next global model (the ServerOpt of Reddi et al. 2021, Algorithm 1).
 * Stateful optimizers persist their state with serializeState()/restoreState() so a restarted hub resumes exactly.
 */
export interface ServerOptimizer {
  readonly algorithm: ServerOptimizerAlgorithm;
  /** Number of model parameters. */
  readonly length: number;
  /** Steps applied so far (restored with the state). */
  readonly round: number;
  /**
   * x_{t+1} from x_t (`global`) and Δ_t (`delta`, the aggregate of local − global). Returns a new array; `global`
   * is not modified. Refuses (AggregationException) wrong lengths or non-finite inputs before touching state.
   */
  step(global: Float32Array, delta: Float32Array): ServerStep;
  /** The full state as bytes (header + float32 vectors; see optimizer-state-codec.ts). */
  serializeState(): Uint8Array;
  /** Replaces the state with bytes from serializeState() of an identically configured optimizer, or throws. */
  restoreState(bytes: Uint8Array): void;
}

function invalid(message: string): AggregationException {
  return new AggregationException(AggregationErrorCode.InvalidParameter, message);
}

function positiveFinite(name: string, value: number): number {
  if (!(typeof value === 'number' && Number.isFinite(value) && value > 0)) {
    throw invalid(`${name} must be a finite number > 0, got ${String(value)}`);
  }
  return value;
}

function decay(name: string, value: number): number {
  if (!(typeof value === 'number' && value >= 0 && value < 1)) {
    throw invalid(`${name} must be in [0, 1), got ${String(value)}`);
  }
  return value;
}

abstract class StatefulServerOptimizer implements ServerOptimizer {
  abstract readonly algorithm: ServerOptimizerAlgorithm;
  readonly length: number;
  protected rounds = 0;

  protected constructor(length: number) {
    if (!Number.isInteger(length) || length < 1 || length > 0xffffffff) {
      throw invalid(`length must be an integer in [1, 2^32), got ${String(length)}`);
    }
    this.length = length;
  }

  get round(): number {
    return this.rounds;
  }

  /** Hyperparameters in their fixed serialization order. */
  protected abstract hyperparameterList(): number[];
  protected abstract hyperparameterRecord(): Record<string, number>;
  protected abstract stateVectors(): Float32Array[];
  protected abstract learningRate(): number;
  /** Writes x_{t+1} into `out` and advances the state vectors. Inputs are already validated. */
  protected abstract apply(global: Float32Array, delta: Float32Array, out: Float32Array): void;

  step(global: Float32Array, delta: Float32Array): ServerStep {
    assertLength(global, this.length, 'global model');
    assertLength(delta, this.length, 'aggregate delta');
    assertFiniteSquaredNorm(global, 'global model');
    assertFiniteSquaredNorm(delta, 'aggregate delta');
    const weights = new Float32Array(this.length);
    this.apply(global, delta, weights);
    this.rounds += 1;
    return {
      weights,
      trace: {
        step: 'server-optimizer',
        algorithm: this.algorithm,
        round: this.rounds,
        serverLearningRate: this.learningRate(),
        hyperparameters: this.hyperparameterRecord(),
      },
    };
  }

  serializeState(): Uint8Array {
    return encodeOptimizerState({
      algorithm: this.algorithm,
      length: this.length,
      round: this.rounds,
      hyperparameters: this.hyperparameterList(),
      vectors: this.stateVectors(),
    });
  }

  restoreState(bytes: Uint8Array): void {
    const own = this.stateVectors();
    // Decode and check everything first: a refused state leaves this optimizer untouched.
    const decoded = decodeOptimizerState(bytes, {
      algorithm: this.algorithm,
      length: this.length,
      hyperparameters: this.hyperparameterList(),
      vectorCount: own.length,
    });
    own.forEach((vector, i) => vector.set(decoded.vectors[i]!));
    this.rounds = decoded.round;
  }
}

export interface FedAvgServerOptions {
  readonly length: number;
  /** η; 1 is plain FedAvg (the global model moves by exactly the mean delta). */
  readonly serverLearningRate?: number;
}

/**
 * FedAvg's server step (McMahan et al. 2017, Algorithm 1, written as in Reddi et al. 2021 Algorithm 1 with
 * ServerOpt = SGD): x_{t+1} = x_t + η·Δ_t. Stateless apart from the round counter.
 */
export class FedAvgServerOptimizer extends StatefulServerOptimizer {
  readonly algorithm = 'fedavg' as const;
  readonly serverLearningRate: number;

  constructor(options: FedAvgServerOptions) {
    super(options.length);
    this.serverLearningRate = positiveFinite('serverLearningRate', options.serverLearningRate ?? 1);
  }

  protected hyperparameterList(): number[] {
    return [this.serverLearningRate];
  }
  protected hyperparameterRecord(): Record<string, number> {
    return {};
  }
  protected stateVectors(): Float32Array[] {
    return [];
  }
  protected learningRate(): number {
    return this.serverLearningRate;
  }
  protected apply(x: Float32Array, d: Float32Array, out: Float32Array): void {
    const eta = this.serverLearningRate;
    for (let i = 0; i < out.length; i += 1) out[i] = x[i]! + eta * d[i]!;
  }
}

export interface FedAvgMServerOptions {
  readonly length: number;
  /** η, default 1. */
  readonly serverLearningRate?: number;
  /** β, server momentum in [0, 1); default 0.9. */
  readonly momentum?: number;
}

/**
 * FedAvgM, server momentum (Hsu, Qi, Brown 2019, "Measuring the Effects of Non-Identical Data Distribution for
 * Federated Visual Classification", §3): v_t = β·v_{t−1} + Δ_t, x_{t+1} = x_t + η·v_t, v_{−1} = 0. Hsu et al. write
 * Δ as global − local and subtract; Tessera's deltas are local − global, hence the plus. State: v (4·m bytes).
 */
export class FedAvgMServerOptimizer extends StatefulServerOptimizer {
  readonly algorithm = 'fedavgm' as const;
  readonly serverLearningRate: number;
  readonly momentum: number;
  private readonly velocity: Float32Array;

  constructor(options: FedAvgMServerOptions) {
    super(options.length);
    this.serverLearningRate = positiveFinite('serverLearningRate', options.serverLearningRate ?? 1);
    this.momentum = decay('momentum', options.momentum ?? 0.9);
    this.velocity = new Float32Array(this.length);
  }

  protected hyperparameterList(): number[] {
    return [this.serverLearningRate, this.momentum];
  }
  protected hyperparameterRecord(): Record<string, number> {
    return { momentum: this.momentum };
  }
  protected stateVectors(): Float32Array[] {
    return [this.velocity];
  }
  protected learningRate(): number {
    return this.serverLearningRate;
  }
  protected apply(x: Float32Array, d: Float32Array, out: Float32Array): void {
    const eta = this.serverLearningRate;
    const beta = this.momentum;
    const v = this.velocity;
    for (let i = 0; i < out.length; i += 1) {
      v[i] = beta * v[i]! + d[i]!;
      // Use the stored (float32) state so a restore from bytes continues bit-for-bit.
      out[i] = x[i]! + eta * v[i]!;
    }
  }
}

export interface AdaptiveServerOptions {
  readonly length: number;
  /** η, the server learning rate (required: the paper tunes it per task). */
  readonly serverLearningRate: number;
  /** β1, first-moment decay in [0, 1); default 0.9 (0 for FedAdagrad: no momentum). */
  readonly beta1?: number;
  /** β2, second-moment decay in [0, 1); default 0.99. Unused by FedAdagrad. */
  readonly beta2?: number;
  /** τ > 0, the degree of adaptivity (larger τ: closer to SGD with momentum); default 1e-3. */
  readonly tau?: number;
  /** v_{−1}, the initial second moment, ≥ τ² (Algorithm 2's requirement); default τ². */
  readonly initialSecondMoment?: number;
}

type AdaptiveAlgorithm = 'fedadagrad' | 'fedadam' | 'fedyogi';

/**
 * Reddi et al. 2021, "Adaptive Federated Optimization" (ICLR), Algorithm 2, followed exactly:
 *   m_t = β1·m_{t−1} + (1 − β1)·Δ_t
 *   FedAdagrad: v_t = v_{t−1} + Δ_t²
 *   FedAdam:    v_t = β2·v_{t−1} + (1 − β2)·Δ_t²
 *   FedYogi:    v_t = v_{t−1} − (1 − β2)·Δ_t²·sign(v_{t−1} − Δ_t²)
 *   x_{t+1} = x_t + η·m_t / (√v_t + τ)
 * with m_{−1} = 0 and v_{−1} ≥ τ² (default τ²). There is NO bias correction (unlike Kingma & Ba's Adam and some
 * libraries' FedAdam). State: m and v as Float32Array (8·m bytes); arithmetic in float64, stored as float32, and
 * the new model is computed from the stored values so a restored state continues bit-for-bit.
 */
abstract class AdaptiveServerOptimizer extends StatefulServerOptimizer {
  abstract override readonly algorithm: AdaptiveAlgorithm;
  readonly serverLearningRate: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly tau: number;
  readonly initialSecondMoment: number;
  private readonly firstMoment: Float32Array;
  private readonly secondMoment: Float32Array;

  protected constructor(options: AdaptiveServerOptions, defaultBeta1: number, usesBeta2: boolean) {
    super(options.length);
    this.serverLearningRate = positiveFinite('serverLearningRate', options.serverLearningRate);
    this.beta1 = decay('beta1', options.beta1 ?? defaultBeta1);
    this.beta2 = usesBeta2 ? decay('beta2', options.beta2 ?? 0.99) : 0;
    this.tau = positiveFinite('tau', options.tau ?? 1e-3);
    this.initialSecondMoment = options.initialSecondMoment ?? this.tau * this.tau;
    // Compare in float32: v is stored as float32, and fround(τ²) may sit a hair below the float64 τ².
    if (!(Number.isFinite(this.initialSecondMoment) && this.initialSecondMoment >= Math.fround(this.tau * this.tau))) {
      throw invalid(`initialSecondMoment must be ≥ tau² (Reddi et al. 2021, Algorithm 2)`);
    }
    this.firstMoment = new Float32Array(this.length);
    this.secondMoment = new Float32Array(this.length).fill(this.initialSecondMoment);
  }

  protected hyperparameterList(): number[] {
    return [this.serverLearningRate, this.beta1, this.beta2, this.tau, this.initialSecondMoment];
  }
  protected hyperparameterRecord(): Record<string, number> {
    const record: Record<string, number> = { beta1: this.beta1, tau: this.tau };
    if (this.algorithm !== 'fedadagrad') record['beta2'] = this.beta2;
    return record;
  }
  protected stateVectors(): Float32Array[] {
    return [this.firstMoment, this.secondMoment];
  }
  protected learningRate(): number {
    return this.serverLearningRate;
  }

  /** The current first and second moments (copies), for inspection and tests. */
  moments(): { readonly m: Float32Array; readonly v: Float32Array } {
    return { m: this.firstMoment.slice(), v: this.secondMoment.slice() };
  }

  protected apply(x: Float32Array, d: Float32Array, out: Float32Array): void {
    const { serverLearningRate: eta, beta1: b1, beta2: b2, tau } = this;
    const m = this.firstMoment;
    const v = this.secondMoment;
    const n = out.length;
    // One loop per algorithm keeps the branch out of the per-parameter path.
    if (this.algorithm === 'fedadagrad') {
      for (let i = 0; i < n; i += 1) {
        const di = d[i]!;
        m[i] = b1 * m[i]! + (1 - b1) * di;
        v[i] = v[i]! + di * di;
        out[i] = x[i]! + (eta * m[i]!) / (Math.sqrt(v[i]!) + tau);
      }
    } else if (this.algorithm === 'fedadam') {
      for (let i = 0; i < n; i += 1) {
        const di = d[i]!;
        m[i] = b1 * m[i]! + (1 - b1) * di;
        v[i] = b2 * v[i]! + (1 - b2) * di * di;
        out[i] = x[i]! + (eta * m[i]!) / (Math.sqrt(v[i]!) + tau);
      }
    } else {
      for (let i = 0; i < n; i += 1) {
        const di = d[i]!;
        const d2 = di * di;
        m[i] = b1 * m[i]! + (1 - b1) * di;
        v[i] = v[i]! - (1 - b2) * d2 * Math.sign(v[i]! - d2);
        out[i] = x[i]! + (eta * m[i]!) / (Math.sqrt(v[i]!) + tau);
      }
    }
  }
}

/** FedAdagrad (Reddi et al. 2021, Algorithm 2). Default β1 = 0: plain Adagrad; set β1 > 0 for momentum. */
export class FedAdagradServerOptimizer extends AdaptiveServerOptimizer {
  readonly algorithm = 'fedadagrad' as const;
  constructor(options: AdaptiveServerOptions) {
    super(options, 0, false);
  }
}

/** FedAdam (Reddi et al. 2021, Algorithm 2), without bias correction. Defaults β1 = 0.9, β2 = 0.99, τ = 1e-3. */
export class FedAdamServerOptimizer extends AdaptiveServerOptimizer {
  readonly algorithm = 'fedadam' as const;
  constructor(options: AdaptiveServerOptions) {
    super(options, 0.9, true);
  }
}

/** FedYogi (Reddi et al. 2021, Algorithm 2; Yogi of Zaheer et al. 2018). Defaults β1 = 0.9, β2 = 0.99, τ = 1e-3. */
export class FedYogiServerOptimizer extends AdaptiveServerOptimizer {
  readonly algorithm = 'fedyogi' as const;
  constructor(options: AdaptiveServerOptions) {
    super(options, 0.9, true);
  }
}
