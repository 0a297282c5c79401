// Exact Gaussian noise drawn on a worker thread. DP-SGD needs one noise value per model parameter per step, and the
// noise does not depend on the data, so a training loop can ask for a step's noise first, compute that step's
// gradients on its own thread meanwhile, and only then wait: on a machine with a spare core the sampler's cost is
// hidden. DP-SGD asks for integers (drawIntegers: N_Z(0, σ_L²) for latticeNoise, which adds them to the rounded sum
// in exact arithmetic); draw gives gaussianNoise's lattice values. Each comes from the worker's own CSPRNG source,
// the buffer is transferred, not copied, and nothing leaves the process.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

import { gaussianNoise, noiseLattice } from './gaussian-noise';
import { latticeIntegers } from './lattice-noise';
import type { NoiseReply, NoiseRequest } from './noise-worker.protocol';
import { PrivacyParameterError, PrivacyParameterErrorCode } from './privacy-parameter.exception';

/** The compiled worker script: beside this module in a build, or in dist/ when tests run from the sources. */
export function noiseWorkerScript(): string {
  for (const candidate of [join(__dirname, 'noise-worker.js'), join(__dirname, '..', 'dist', 'noise-worker.js')]) {
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`noise-worker.js not found beside ${__dirname} or in ../dist: build @tessera/dp first`);
}

/**
 * Requests shorter than this are drawn on the calling thread: a round trip to the worker (~0.1-0.5 ms) costs more than
 * drawing them (~40 ns each).
 */
export const NOISE_WORKER_MIN_LENGTH = 8192;

/** Options of GaussianNoiseWorker.draw. */
export interface WorkerNoiseOptions {
  /** As in gaussianNoise (default 24). */
  readonly granularityBits?: number;
}

/** A request as the thread receives it, without its id. */
type NoiseJob = DistributiveOmit<NoiseRequest, 'id'>;
type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

interface Pending {
  resolve(noise: Float64Array): void;
  reject(error: Error): void;
}

/**
 * A worker thread that draws gaussianNoise on request. The thread starts with the first request long enough to need
 * it; idle, it does not keep the process alive. If the thread dies (an error, out of memory), the requests it held
 * reject and the next request starts a new thread: one failed training step, not a silo that cannot train until
 * someone restarts its agent.
 */
export class GaussianNoiseWorker {
  private worker: Worker | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  constructor(private readonly script: string = noiseWorkerScript()) {}

  /** The thread, started on first use and again after a failure. */
  private thread(): Worker {
    if (this.worker === null) {
      const worker = new Worker(this.script);
      worker.on('message', (reply: NoiseReply) => this.settle(reply));
      worker.on('error', (error) => this.lost(worker, error));
      worker.on('exit', (code) => this.lost(worker, new Error(`the noise worker thread exited (code ${code})`)));
      // After the listeners: attaching a 'message' listener refs the worker again.
      worker.unref();
      this.worker = worker;
    }
    return this.worker;
  }

  /**
   * `length` draws as gaussianNoise(length, stddev, { granularityBits }) would return them, from the worker thread
   * (or, below NOISE_WORKER_MIN_LENGTH, from this one). Bad parameters reject with the same PrivacyParameterError,
   * before anything is sent to the thread.
   */
  draw(length: number, stddev: number, options: WorkerNoiseOptions = {}): Promise<Float64Array> {
    const job: NoiseJob = {
      kind: 'gaussian',
      length,
      stddev,
      ...(options.granularityBits === undefined ? {} : { granularityBits: options.granularityBits }),
    };
    return this.submit(
      job,
      () => noiseLattice(stddev, options.granularityBits),
      () => gaussianNoise(length, stddev, options),
    );
  }

  /**
   * `length` integer draws of the exact discrete Gaussian N_Z(0, latticeSigma²), as latticeIntegers would return them
   * (the noise latticeNoise adds; DP-SGD asks for them one step ahead). latticeSigma must be an integer in [1, 2^31];
   * bad parameters reject with latticeIntegers' PrivacyParameterError before anything is sent to the thread.
   */
  drawIntegers(length: number, latticeSigma: number): Promise<Float64Array> {
    return this.submit(
      { kind: 'integers', length, latticeSigma },
      () => latticeIntegers(0, latticeSigma),
      () => latticeIntegers(length, latticeSigma),
    );
  }

  /** Validates (throws become rejections), draws short requests here and sends the others to the thread. */
  private async submit(job: NoiseJob, validate: () => unknown, drawHere: () => Float64Array): Promise<Float64Array> {
    if (!Number.isSafeInteger(job.length) || job.length < 0) {
      throw new PrivacyParameterError(
        PrivacyParameterErrorCode.InvalidOption,
        'length',
        `length must be a non-negative integer; got ${String(job.length)}`,
      );
    }
    validate();
    if (job.length < NOISE_WORKER_MIN_LENGTH && !this.closed) return drawHere();
    if (this.closed) throw new Error('the noise worker is closed');
    const request: NoiseRequest = { ...job, id: this.nextId++ };
    const worker = this.thread(); // may throw, e.g. the script cannot be loaded
    return await new Promise<Float64Array>((resolve, reject) => {
      this.pending.set(request.id, { resolve, reject });
      // Keep the process alive only while someone waits for noise.
      if (this.pending.size === 1) worker.ref();
      worker.postMessage(request);
    });
  }

  /** Stops the thread; requests still waiting reject. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.rejectAll(new Error('the noise worker is closed'));
    await this.worker?.terminate();
  }

  private settle(reply: NoiseReply): void {
    const waiting = this.pending.get(reply.id);
    if (waiting === undefined) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker?.unref();
    if ('noise' in reply) {
      waiting.resolve(reply.noise);
      return;
    }
    const { code, parameter, message } = reply.error;
    const known = Object.values(PrivacyParameterErrorCode).find((c) => c === code);
    waiting.reject(
      known !== undefined && parameter !== undefined
        ? new PrivacyParameterError(known, parameter, message)
        : new Error(`the noise worker failed: ${message}`),
    );
  }

  /** The thread failed or ended: its requests reject, and it is replaced on the next request. */
  private lost(worker: Worker, error: Error): void {
    if (this.closed || this.worker !== worker) return; // closing, or an old thread's second event ('error', 'exit')
    this.worker = null;
    this.rejectAll(error);
    void worker.terminate();
  }

  private rejectAll(error: Error): void {
    for (const waiting of this.pending.values()) waiting.reject(error);
    this.pending.clear();
    this.worker?.unref();
  }
}
