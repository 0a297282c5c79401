import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { AggregationErrorCode, AggregationException } from './aggregation.exception';
import { fusedPass } from './fused-sum';
import type { KernelInstance } from './simd-kernel';

// The worker threads of ThreadedBlockSum (threaded-block-sum.ts) and the jobs they run: a pass's scaled, fused sum of
// a block's coordinates (runJob), and the SHA-256 of each update's blocks as they are read (hashJob). Both functions
// are self-contained: their source is what the threads run, and the calling thread runs them itself with no threads.

export interface Job {
  readonly kind: 'add' | 'quotient';
  readonly sources: readonly number[];
  readonly weights: readonly number[];
  readonly scales: readonly number[];
  readonly start: number;
  readonly end: number;
  readonly fresh: boolean;
  readonly outPtr: number;
  readonly d: number;
}

/** One block of one term to hash, in the slot at byte `ptr`; `first`: the term's first block (a new hash). */
export interface HashBlock {
  readonly term: number;
  readonly ptr: number;
  readonly bytes: number;
  readonly first: boolean;
  /** With the first block: the update's leading bytes, hashed before the block. */
  readonly leading: Uint8Array | null;
}

/** Blocks to hash ('hash'), or the digests of terms to finish ('digest'). */
export type HashJobSpec =
  | { readonly kind: 'hash'; readonly blocks: readonly HashBlock[] }
  | {
      readonly kind: 'digest';
      readonly terms: readonly number[];
    };

/** The incremental SHA-256 node:crypto gives (the part a hash job uses). */
export interface IncrementalHash {
  update(data: Uint8Array): unknown;
  digest(encoding: 'hex'): string;
}

/**
 * A hash job on the thread that owns the terms' hashes (`states`, by term): each block hashed from the kernel's
 * memory in place, or the finished digests (hex) of `terms`, forgotten afterwards. Self-contained: its source is also
 * what the worker threads run.
 */
export function hashJob(
  states: Map<number, IncrementalHash>,
  buffer: ArrayBufferLike,
  job: HashJobSpec,
  create: () => IncrementalHash,
): string[] | undefined {
  if (job.kind === 'digest') {
    return job.terms.map((term) => {
      const state = states.get(term);
      if (!state) throw new Error(`no hash of term ${term} on this thread`);
      states.delete(term);
      return state.digest('hex');
    });
  }
  for (const block of job.blocks) {
    let state = states.get(block.term);
    if (block.first) {
      state = create();
      states.set(block.term, state);
      if (block.leading) state.update(block.leading);
    }
    if (!state) throw new Error(`a block of term ${block.term} before its first`);
    state.update(new Uint8Array(buffer, block.ptr, block.bytes));
  }
  return undefined;
}

/**
 * One job on coordinates [start, end): scale the slots in place where asked, then the fused kernel pass (or the
 * quotient). Self-contained: its source is also what the worker threads run.
 */
export function runJob(
  kernels: KernelInstance,
  heap: Float32Array,
  sum: Float64Array,
  chunk: number,
  maxFused: number,
  job: Job,
  pass: typeof fusedPass,
): void {
  const { sources, weights, scales, start, end } = job;
  for (let j = 0; j < sources.length; j += 1) {
    const f = scales[j]!;
    if (f === 1) continue;
    const base = sources[j]! >> 2;
    for (let i = start; i < end; i += 1) heap[base + i] = heap[base + i]! * f;
  }
  pass(kernels, heap, sum, 0, chunk, maxFused, sources, weights, start, end, job.fresh, job.outPtr, job.d);
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { module, memory, length, chunk, maxFused } = workerData;
const instance = new WebAssembly.Instance(module, { env: { memory } });
const kernels = {
  acc: Array.from({ length: maxFused }, (_, j) => instance.exports['acc' + (j + 1)]),
  init: Array.from({ length: maxFused }, (_, j) => instance.exports['init' + (j + 1)]),
  quot: instance.exports.quot,
};
const heap = new Float32Array(memory.buffer);
const sum = new Float64Array(memory.buffer, 0, length);
const fusedPass = ${fusedPass.toString()};
const runJob = ${runJob.toString()};
const hashJob = ${hashJob.toString()};
const hashes = new Map();
const newHash = () => createHash('sha256');
parentPort.on('message', ({ seq, job }) => {
  try {
    let digests;
    if (job.kind === 'hash' || job.kind === 'digest') digests = hashJob(hashes, memory.buffer, job, newHash);
    else runJob(kernels, heap, sum, chunk, maxFused, job, fusedPass);
    parentPort.postMessage({ seq, digests });
  } catch (error) {
    parentPort.postMessage({ seq, error: String((error && error.stack) || error) });
  }
});
`;

/** A worker thread over the shared memory, answering each job with a message. */
export class SumWorker {
  private readonly worker: Worker;
  private readonly waiting = new Map<
    number,
    { resolve: (digests: string[] | undefined) => void; reject: (e: Error) => void }
  >();
  private seq = 0;
  private failure: Error | null = null;

  constructor(workerData: object) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData });
    this.worker.unref();
    this.worker.on('message', ({ seq, error, digests }: { seq: number; error?: string; digests?: string[] }) => {
      const waiter = this.waiting.get(seq);
      this.waiting.delete(seq);
      if (!waiter) return;
      if (error === undefined) waiter.resolve(digests);
      else
        waiter.reject(new AggregationException(AggregationErrorCode.InvalidParameter, `a sum thread failed: ${error}`));
    });
    const fail = (error: Error): void => {
      this.failure = error;
      for (const waiter of this.waiting.values()) waiter.reject(error);
      this.waiting.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`a sum thread exited (code ${code})`)));
  }

  run(job: Job | HashJobSpec): Promise<string[] | undefined> {
    if (this.failure) return Promise.reject(this.failure);
    this.seq += 1;
    const seq = this.seq;
    return new Promise((resolve, reject) => {
      this.waiting.set(seq, { resolve, reject });
      this.worker.postMessage({ seq, job });
    });
  }

  close(): Promise<number> {
    this.worker.removeAllListeners('exit');
    return this.worker.terminate();
  }
}

export function newSha256(): IncrementalHash {
  return createHash('sha256');
}
