// Exact Gaussian noise drawn on a worker thread. DP-SGD needs one noise value per model parameter per step, and the
// noise does not depend on the data, so a training loop can ask for a step's noise first, compute that step's
// gradients on its own thread meanwhile, and only then wait: on a machine with a spare core the sampler's cost is
// hidden. The noise is the same as gaussianNoise's (exact discrete Gaussian, the worker's own CSPRNG source), the
// buffer is transferred, not copied, and nothing leaves the process.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

import { gaussianNoise, gaussianNoiseFloat32, noiseLattice } from './gaussian-noise';
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
  /**
   * Return a Float32Array: the exact lattice values rounded to float32 on the worker thread, for callers that would
   * convert anyway (DP-SGD adds the noise to float32 tensors). Default: Float64Array, the exact values.
   */
  readonly float32?: boolean;
}

interface Pending {
  resolve(noise: Float64Array | Float32Array): void;
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
  draw(length: number, stddev: number, options: WorkerNoiseOptions & { readonly float32: true }): Promise<Float32Array>;
  draw(length: number, stddev: number, options?: WorkerNoiseOptions): Promise<Float64Array>;
  draw(length: number, stddev: number, options: WorkerNoiseOptions = {}): Promise<Float64Array | Float32Array> {
    try {
      if (!Number.isSafeInteger(length) || length < 0) {
        throw new PrivacyParameterError(
          PrivacyParameterErrorCode.InvalidOption,
          'length',
          `length must be a non-negative integer; got ${String(length)}`,
        );
      }
      noiseLattice(stddev, options.granularityBits);
      if (length < NOISE_WORKER_MIN_LENGTH && !this.closed) {
        return Promise.resolve(
          options.float32 === true
            ? gaussianNoiseFloat32(length, stddev, options)
            : gaussianNoise(length, stddev, options),
        );
      }
    } catch (error) {
      return Promise.reject(error as Error);
    }
    if (this.closed) return Promise.reject(new Error('the noise worker is closed'));
    const id = this.nextId++;
    const request: NoiseRequest = {
      id,
      length,
      stddev,
      ...(options.granularityBits === undefined ? {} : { granularityBits: options.granularityBits }),
      ...(options.float32 === true ? { float32: true } : {}),
    };
    let worker: Worker;
    try {
      worker = this.thread();
    } catch (error) {
      return Promise.reject(error as Error); // e.g. the script cannot be loaded
    }
    return new Promise<Float64Array | Float32Array>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
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
