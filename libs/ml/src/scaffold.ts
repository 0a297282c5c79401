import { fail, TrainingInputErrorCode } from './ml.exception';

/** A silo's SCAFFOLD state after a round: its new control variate c_i⁺ and the delta it uploads, c_i⁺ − c_i. */
export interface ControlVariateUpdate {
  readonly control: Float32Array;
  readonly controlDelta: Float32Array;
}

/**
 * The per-step correction SCAFFOLD adds to every local gradient: c − c_i (Karimireddy et al., ICML 2020, Algorithm 1,
 * line 10: y_i ← y_i − η_l (g_i(y_i) − c_i + c)). Computed in float64, returned as float32.
 */
export function controlCorrection(serverControl: Float32Array, clientControl: Float32Array): Float32Array {
  assertSameLength(serverControl, clientControl, 'the server and silo control variates');
  const out = new Float32Array(serverControl.length);
  for (let i = 0; i < out.length; i++) out[i] = serverControl[i]! - clientControl[i]!;
  return out;
}

/**
 * SCAFFOLD's control-variate update, option II (Karimireddy et al., ICML 2020, Algorithm 1, line 12):
 * c_i⁺ = c_i − c + (x − y_i) / (K·η_l), where x − y_i = −delta, K the local steps and η_l the local learning rate.
 * With the correction c − c_i added to each step's gradient g_k this is exactly the mean of the K gradients the silo
 * stepped on; under DP-SGD those are the noisy released gradients, so c_i⁺ is post-processing of the DP releases.
 * Computed in float64; c_i⁺ and Δc_i = c_i⁺ − c_i are returned as float32.
 */
export function scaffoldControlUpdate(input: {
  readonly clientControl: Float32Array;
  readonly serverControl: Float32Array;
  /** The local model delta y_i − x. */
  readonly delta: Float32Array;
  readonly steps: number;
  readonly learningRate: number;
}): ControlVariateUpdate {
  const { clientControl, serverControl, delta, steps, learningRate } = input;
  assertSameLength(clientControl, serverControl, 'the silo and server control variates');
  assertSameLength(clientControl, delta, 'the control variate and the model delta');
  if (!(Number.isInteger(steps) && steps >= 1)) fail(TrainingInputErrorCode.Steps, 'steps must be a positive integer');
  if (!(Number.isFinite(learningRate) && learningRate > 0)) {
    fail(TrainingInputErrorCode.LearningRate, 'learningRate must be a finite number > 0');
  }
  const scale = 1 / (steps * learningRate);
  const control = new Float32Array(delta.length);
  const controlDelta = new Float32Array(delta.length);
  for (let i = 0; i < delta.length; i++) {
    const next = clientControl[i]! - serverControl[i]! - delta[i]! * scale;
    control[i] = next;
    controlDelta[i] = next - clientControl[i]!;
  }
  return { control, controlDelta };
}

/**
 * The hub's control-variate step (Algorithm 1, line 17): c ← c + (|S|/N)·mean_{i∈S} Δc_i, with |S| the silos whose
 * updates were aggregated and N the silos asked for the round. `meanDelta` is the aggregate's mean of the Δc_i.
 */
export function serverControlStep(
  serverControl: Float32Array,
  meanDelta: Float32Array,
  aggregated: number,
  asked: number,
): Float32Array {
  assertSameLength(serverControl, meanDelta, 'the server control variate and the mean control delta');
  if (!(Number.isInteger(aggregated) && Number.isInteger(asked) && aggregated >= 1 && asked >= aggregated)) {
    throw new RangeError(`aggregated (${aggregated}) must be an integer in 1..asked (${asked})`);
  }
  const fraction = aggregated / asked;
  const out = new Float32Array(serverControl.length);
  for (let i = 0; i < out.length; i++) out[i] = serverControl[i]! + fraction * meanDelta[i]!;
  return out;
}

function assertSameLength(a: Float32Array, b: Float32Array, what: string): void {
  if (a.length !== b.length) fail(TrainingInputErrorCode.Parameters, `${what} have ${a.length} and ${b.length} values`);
}
