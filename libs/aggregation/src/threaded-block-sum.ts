import { availableParallelism } from 'node:os';
import { AggregationErrorCode, AggregationException } from './aggregation.exception';
import {
  hashJob,
  newSha256,
  runJob,
  SumWorker,
  type HashBlock,
  type HashJobSpec,
  type IncrementalHash,
  type Job,
} from './block-sum-worker';
import { CHUNK, fusedPass } from './fused-sum';
import {
  instantiateKernel,
  kernelModule,
  MAX_FUSED,
  wasmApi,
  type KernelInstance,
  type WasmMemory,
  type WasmModule,
} from './simd-kernel';

/*
 * The float64 sum Σ wᵢ·sᵢ·uᵢ of n updates that are NOT in memory: read block by block (a range of coordinates of up to
 * eight updates at a time) straight into slots of the SIMD kernel's memory, and accumulated there by worker threads
 * that each own a range of the block's coordinates, so the calling thread only issues reads and waits (a hub's main
 * thread keeps serving requests meanwhile). While the workers sum one block, the next is read into a second set of
 * slots. Per coordinate the operations and their order are those of WeightedMeanAccumulator.add applied update after
 * update (fused-sum.ts): the same bits whatever the threads, the block size or the grouping.
 *
 *   sᵢ < 1 (a clipping or norm-bounding factor): the block is first scaled in place, float32(uᵢ·sᵢ), exactly as
 *   scaleUpdate / DpFedAvgAggregator make their scaled copies, then accumulated with weight wᵢ.
 *
 * Memory: 8m bytes of sum, 4m of quotient, and 2 · 8 · blockParameters · 4 bytes of slots (16 MiB at the default).
 *
 * Digests (BlockSumTerms.digests): the SHA-256 of each update's bytes as they are read — its leading bytes (a frame's
 * prefix and header), then every block's values in coordinate order — so a caller checks the bytes it summed against
 * their content address without reading them a second time (ADR 0021). Each update is pinned to one worker thread,
 * which keeps its incremental hash and hashes each block from the slot right after it is read, before the block is
 * scaled or summed; with several threads the updates of a group are spread over them, so the hashing, like the sum,
 * runs on every core and not on the calling thread (with threads = 0 it runs on the calling thread).
 */

/** Default coordinates per slot: 262,144 (1 MiB of float32 per update per read). */
export const DEFAULT_SUM_BLOCK_PARAMETERS = 262_144;

/** Reads a range of one update's coordinates into memory the sum provides. */
export interface UpdateBlockSource {
  /** n: number of updates. */
  readonly count: number;
  /** m: parameters per update. */
  readonly length: number;
  /**
   * Writes update `update`'s float32 values at coordinates [start, end) into `target` (exactly end − start values;
   * a view of shared memory). The values must be finite (e.g. validated on receipt): the sum does not re-check them.
   */
  readInto(update: number, start: number, end: number, target: Float32Array): Promise<void>;
  /**
   * The bytes of update `update`'s stored form that come before its values (a frame's prefix and header), hashed
   * ahead of them when the sum computes digests. Omitted: nothing comes before the values.
   */
  leadingBytes?(update: number): Uint8Array;
}

export interface ThreadedBlockSumOptions {
  /**
   * Worker threads summing each block (each owns a contiguous range of its coordinates). Default: the number of
   * cores. 0: everything on the calling thread (the single-core fallback; it then blocks while it sums).
   */
  readonly threads?: number;
  /** Coordinates per read (a multiple of 8). Default DEFAULT_SUM_BLOCK_PARAMETERS. */
  readonly blockParameters?: number;
}

/** Which updates to add, with what weight and scale. */
export interface BlockSumTerms {
  /** Indices into the source, in the order they are added. */
  readonly indices: readonly number[];
  /** wᵢ, one per index (finite, > 0: the caller's weights, already validated). */
  readonly weights: readonly number[];
  /** sᵢ ∈ (0, 1], one per index; omitted: all 1 (no scaling). */
  readonly scales?: readonly number[];
  /** Called with every block read, in coordinate order per update, before it is summed (e.g. a streamed norm). */
  readonly onBlock?: (position: number, values: Float32Array) => void;
  /**
   * Also compute each term's SHA-256 (lowercase hex, in the order of `indices`) over its update's leadingBytes and
   * then the bytes of every block as read into the slot (little-endian float32), before any scaling: the digest of
   * exactly the bytes that were summed. Off the calling thread when threads > 0.
   */
  readonly digests?: boolean;
}

/** Which updates a pass reads (without summing them): BlockSumTerms without weights. */
export type BlockScanTerms = Pick<BlockSumTerms, 'indices' | 'onBlock' | 'digests'>;

/** What a pass reports beside the sums. */
export interface BlockPassResult {
  /** The terms' SHA-256 digests in the order of `indices` when asked for (BlockSumTerms.digests), else null. */
  readonly digests: readonly string[] | null;
}

/** One step of a pass: coordinates [start, end) of the terms group … group + 7. */
interface Step {
  readonly start: number;
  readonly end: number;
  readonly group: number;
}

const WASM_PAGE = 65_536;
const WASM_MAX_BYTES = 65_536 * WASM_PAGE;

function align64(bytes: number): number {
  return Math.ceil(bytes / 64) * 64;
}

/**
 * The fused SIMD sum of updates read block by block, on worker threads over shared memory (see the file comment).
 * Create with `ThreadedBlockSum.create` (null where the engine has no WebAssembly SIMD or the model exceeds wasm32
 * memory: the caller then keeps its scalar path, which gives the same bits), and `close` when done.
 */
export class ThreadedBlockSum {
  /** The sums Σ wᵢ·sᵢ·uᵢ (a view into the kernel's memory; valid until close). */
  readonly values: Float64Array;
  private readonly workers: SumWorker[];
  private readonly local: KernelInstance | null;
  private readonly heap: Float32Array;
  private readonly slotsPtr: number;
  private readonly outPtr: number;
  private readonly slotBytes: number;
  private readonly buffer: ArrayBufferLike;
  /** The terms' hashes when the sum runs on the calling thread (threads = 0). */
  private readonly localHashes = new Map<number, IncrementalHash>();

  private constructor(
    readonly length: number,
    readonly blockParameters: number,
    readonly threads: number,
    memory: WasmMemory,
    module: WasmModule,
  ) {
    const sumBytes = align64(8 * length);
    this.outPtr = sumBytes;
    this.slotsPtr = sumBytes + align64(4 * length);
    this.slotBytes = align64(4 * blockParameters);
    this.buffer = memory.buffer;
    this.heap = new Float32Array(memory.buffer);
    this.values = new Float64Array(memory.buffer, 0, length);
    this.local = threads === 0 ? instantiateKernel(module, memory) : null;
    const workerData = { module, memory, length, chunk: CHUNK, maxFused: MAX_FUSED };
    this.workers = Array.from({ length: threads }, () => new SumWorker(workerData));
  }

  /** A sum of m parameters, or null where the SIMD kernel cannot run (no WebAssembly SIMD, or m too large). */
  static create(length: number, options: ThreadedBlockSumOptions = {}): ThreadedBlockSum | null {
    const plan = ThreadedBlockSum.plan(length, options);
    if (!plan) return null;
    const { threads, block, bytes, module } = plan;
    const pages = Math.ceil(bytes / WASM_PAGE);
    const Memory = wasmApi()!.Memory;
    const memory =
      threads > 0
        ? new Memory({ initial: pages, maximum: pages, shared: true })
        : new Memory({ initial: pages, maximum: pages });
    return new ThreadedBlockSum(length, block, threads, memory, module);
  }

  /** Whether `create` with these arguments gives a sum on this engine (without allocating anything). */
  static supported(length: number, options: ThreadedBlockSumOptions = {}): boolean {
    return ThreadedBlockSum.plan(length, options) !== null;
  }

  /** Checks the arguments; the layout's size and the compiled kernel, or null where the kernel cannot run. */
  private static plan(
    length: number,
    options: ThreadedBlockSumOptions,
  ): { threads: number; block: number; bytes: number; module: WasmModule } | null {
    if (!Number.isInteger(length) || length < 1) {
      throw new AggregationException(AggregationErrorCode.InvalidParameter, `length must be an integer ≥ 1`);
    }
    const threads = options.threads ?? availableParallelism();
    if (!Number.isInteger(threads) || threads < 0 || threads > 64) {
      throw new AggregationException(
        AggregationErrorCode.InvalidParameter,
        `threads must be an integer in [0, 64], got ${String(threads)}`,
      );
    }
    const block = Math.min(options.blockParameters ?? DEFAULT_SUM_BLOCK_PARAMETERS, Math.ceil(length / 8) * 8);
    if (!Number.isInteger(block) || block < 8 || block % 8 !== 0) {
      throw new AggregationException(
        AggregationErrorCode.InvalidParameter,
        `blockParameters must be a multiple of 8, got ${String(options.blockParameters)}`,
      );
    }
    const bytes = align64(8 * length) + align64(4 * length) + 2 * MAX_FUSED * align64(4 * block);
    const module = bytes <= WASM_MAX_BYTES ? kernelModule(threads > 0) : null;
    return module ? { threads, block, bytes, module } : null;
  }

  /**
   * values ← Σ wᵢ·sᵢ·uᵢ over the terms (the previous sum is discarded). Resolves once every block is summed (with the
   * terms' digests when asked for); the calling thread only reads (and runs onBlock) unless threads = 0. A failed read
   * rejects, leaving the sum partial.
   */
  async sum(source: UpdateBlockSource, terms: BlockSumTerms): Promise<BlockPassResult> {
    const n = terms.indices.length;
    if (terms.weights.length !== n || (terms.scales && terms.scales.length !== n)) {
      throw new AggregationException(AggregationErrorCode.InvalidParameter, 'one weight and one scale per update');
    }
    this.checkSource(source);
    if (n === 0) {
      this.values.fill(0);
      return { digests: terms.digests ? [] : null };
    }
    const scales = terms.scales ?? terms.indices.map(() => 1);
    return this.pass(source, terms, (step, set) => {
      const k = Math.min(MAX_FUSED, n - step.group);
      const j = Array.from({ length: k }, (_, i) => i);
      return this.run({
        kind: 'add',
        // Pointer of coordinate 0 of each update: the slot holds coordinates [start, end).
        sources: j.map((i) => this.slotPtr(set, i) - 4 * step.start),
        weights: j.map((i) => terms.weights[step.group + i]!),
        scales: j.map((i) => scales[step.group + i]!),
        start: step.start,
        end: step.end,
        fresh: step.group === 0,
        outPtr: -1,
        d: 1,
      });
    });
  }

  /**
   * Reads every block of the terms' updates through the slots, as `sum` does, without summing them (the sum is left
   * as it was): for onBlock (e.g. exact norms before a clipped sum) and the digests of the bytes read.
   */
  async scan(source: UpdateBlockSource, terms: BlockScanTerms): Promise<BlockPassResult> {
    this.checkSource(source);
    if (terms.indices.length === 0) return { digests: terms.digests ? [] : null };
    return this.pass(source, terms, null);
  }

  private checkSource(source: UpdateBlockSource): void {
    if (source.length !== this.length) {
      throw new AggregationException(
        AggregationErrorCode.LengthMismatch,
        `the source holds updates of ${source.length} parameters, the sum ${this.length}`,
      );
    }
  }

  /**
   * One pass over the terms' updates: steps of (block, group of up to eight updates) in coordinate order, each read
   * into one of two sets of slots while the previous step is hashed and summed (`add`) on the workers. With digests,
   * a step's slots are hashed once read, and the step is summed only after that (summing may scale the slots in
   * place), so every update's hash sees its bytes in order and as read.
   */
  private async pass(
    source: UpdateBlockSource,
    terms: BlockScanTerms,
    add: ((step: Step, set: number) => Promise<void>) | null,
  ): Promise<BlockPassResult> {
    const n = terms.indices.length;
    const steps: Step[] = [];
    for (let start = 0; start < this.length; start += this.blockParameters) {
      const end = Math.min(this.length, start + this.blockParameters);
      for (let group = 0; group < n; group += MAX_FUSED) steps.push({ start, end, group });
    }
    const read = async (step: Step, set: number): Promise<void> => {
      const k = Math.min(MAX_FUSED, n - step.group);
      const views = Array.from({ length: k }, (_, j) => this.slot(set, j, step.end - step.start));
      await Promise.all(
        views.map((view, j) => source.readInto(terms.indices[step.group + j]!, step.start, step.end, view)),
      );
      if (terms.onBlock) views.forEach((view, j) => terms.onBlock!(step.group + j, view));
    };
    const hash = (s: number): Promise<void> =>
      terms.digests && s < steps.length ? this.hash(source, terms.indices, steps[s]!, s % 2) : Promise.resolve();
    await read(steps[0]!, 0);
    let hashing = hash(0);
    for (let s = 0; s < steps.length; s += 1) {
      // Step s + 1 is read into the other set while the workers hash step s and then sum it; hash and sum jobs are
      // posted in step order, so each worker sees every term's blocks in order and each coordinate's groups in order.
      const next = s + 1 < steps.length ? read(steps[s + 1]!, (s + 1) % 2) : Promise.resolve();
      const summing = add ? hashing.then(() => add(steps[s]!, s % 2)) : hashing;
      await Promise.all([summing, next]);
      hashing = hash(s + 1);
    }
    return { digests: terms.digests ? await this.digests(n) : null };
  }

  /** The thread that keeps term `term`'s hash: the terms of a group alternate over the workers. */
  private hasherOf(term: number): number {
    return this.workers.length === 0 ? 0 : term % this.workers.length;
  }

  /** Hashes the step's slots (just read, not yet summed) on the threads that own the terms' hashes. */
  private async hash(source: UpdateBlockSource, indices: readonly number[], step: Step, set: number): Promise<void> {
    const k = Math.min(MAX_FUSED, indices.length - step.group);
    const perThread: HashBlock[][] = Array.from({ length: Math.max(1, this.workers.length) }, () => []);
    for (let j = 0; j < k; j += 1) {
      const term = step.group + j;
      const first = step.start === 0;
      const leading = first ? source.leadingBytes?.(indices[term]!) : undefined;
      perThread[this.hasherOf(term)]!.push({
        term,
        ptr: this.slotPtr(set, j),
        bytes: 4 * (step.end - step.start),
        first,
        // A copy of exactly these bytes: a view would post its whole underlying buffer.
        leading: leading && leading.length > 0 ? new Uint8Array(leading) : null,
      });
    }
    if (this.workers.length === 0) {
      hashJob(this.localHashes, this.buffer, { kind: 'hash', blocks: perThread[0]! }, newSha256);
      return;
    }
    await Promise.all(
      perThread.flatMap((blocks, t) => (blocks.length > 0 ? [this.workers[t]!.run({ kind: 'hash', blocks })] : [])),
    );
  }

  /** The finished digests of terms 0 … n − 1, gathered from the threads that kept them. */
  private async digests(n: number): Promise<string[]> {
    const out = new Array<string>(n);
    const threads = Math.max(1, this.workers.length);
    await Promise.all(
      Array.from({ length: threads }, async (_, t) => {
        const terms = Array.from({ length: n }, (_, term) => term).filter((term) => this.hasherOf(term) === t);
        if (terms.length === 0) return;
        const job: HashJobSpec = { kind: 'digest', terms };
        const hex =
          this.workers.length === 0
            ? hashJob(this.localHashes, this.buffer, job, newSha256)
            : await this.workers[t]!.run(job);
        terms.forEach((term, i) => (out[term] = hex![i]!));
      }),
    );
    return out;
  }

  /** float32(values[i] / d) for every coordinate, true division rounded once (as WeightedMeanAccumulator.quotient). */
  async quotient(d: number): Promise<Float32Array> {
    if (!(d > 0 && Number.isFinite(d))) {
      throw new AggregationException(AggregationErrorCode.InvalidParameter, `denominator must be finite and > 0`);
    }
    const range = { start: 0, end: this.length };
    await this.run({
      kind: 'quotient',
      sources: [],
      weights: [],
      scales: [],
      ...range,
      fresh: false,
      outPtr: this.outPtr,
      d,
    });
    return this.heap.slice(this.outPtr >> 2, (this.outPtr >> 2) + this.length);
  }

  /** Stops the worker threads. The sum must not be used afterwards. */
  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
  }

  private slotPtr(set: number, j: number): number {
    return this.slotsPtr + (set * MAX_FUSED + j) * this.slotBytes;
  }

  private slot(set: number, j: number, length: number): Float32Array {
    return this.heap.subarray(this.slotPtr(set, j) >> 2, (this.slotPtr(set, j) >> 2) + length);
  }

  /** The job on [start, end), split in contiguous ranges (multiples of 8) over the workers, or run here. */
  private run(job: Job): Promise<void> {
    if (this.local) {
      runJob(this.local, this.heap, this.values, CHUNK, MAX_FUSED, job, fusedPass);
      return Promise.resolve();
    }
    const span = job.end - job.start;
    const per = Math.ceil(span / this.workers.length / 8) * 8;
    const parts: Promise<void>[] = [];
    for (let t = 0; t < this.workers.length; t += 1) {
      const start = job.start + t * per;
      const end = Math.min(job.end, start + per);
      if (start >= end) break;
      parts.push(this.workers[t]!.run({ ...job, start, end }).then(() => undefined));
    }
    return Promise.all(parts).then(() => undefined);
  }
}
