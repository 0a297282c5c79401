// Messages between GaussianNoiseWorker and its thread (noise-worker.ts).

export interface NoiseRequest {
  readonly id: number;
  readonly length: number;
  readonly stddev: number;
  readonly granularityBits?: number;
  /** Answer in float32 (rounded from the exact lattice values on the worker thread) rather than float64. */
  readonly float32?: boolean;
}

export type NoiseReply =
  | { readonly id: number; readonly noise: Float64Array | Float32Array }
  | { readonly id: number; readonly error: { message: string; code?: string; parameter?: string } };
