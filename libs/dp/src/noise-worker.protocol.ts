// Messages between GaussianNoiseWorker and its thread (noise-worker.ts).

export type NoiseRequest =
  /** gaussianNoise(length, stddev, { granularityBits }): lattice-valued noise in the caller's units. */
  | {
      readonly kind: 'gaussian';
      readonly id: number;
      readonly length: number;
      readonly stddev: number;
      readonly granularityBits?: number;
    }
  /** latticeIntegers(length, latticeSigma): integer draws of N_Z(0, latticeSigma²), for latticeNoise. */
  | { readonly kind: 'integers'; readonly id: number; readonly length: number; readonly latticeSigma: number };

export type NoiseReply =
  | { readonly id: number; readonly noise: Float64Array }
  | { readonly id: number; readonly error: { message: string; code?: string; parameter?: string } };
