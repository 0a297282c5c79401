import { Worker } from 'node:worker_threads';
import { AggregationErrorCode, AggregationException } from './aggregation.exception';
import {
  instantiateKernel,
  kernelModule,
  MAX_FUSED,
  wasmApi,
  type AccKernel,
  type KernelInstance,
  type WasmMemory,
  type WasmModule,
} from './simd-kernel';

/*
 * The float64 running sum Σ wᵢ·uᵢ behind WeightedMeanAccumulator, and the three ways of adding to it. All three give
 * the same bits: per coordinate, s ← s + wᵢ·uᵢ in float64, update after update in the order given.
 *
 *   scalar   a JavaScript loop, one update per pass (20 bytes moved per parameter and update).
 *   simd     the WebAssembly SIMD kernel (simd-kernel.ts). The sum lives in the kernel's memory; each update is copied
 *            in chunks of CHUNK coordinates into a small staging area (it stays in the L2 cache), and up to eight
 *            updates are accumulated per pass, so the sum is read and written once per eight updates:
 *            4 + 16/k bytes moved from memory per parameter and update instead of 20.
 *   2 cores  simd, with the coordinates split in two halves: the calling thread sums the first, one worker thread
 *            the second, over a shared memory. Only for updates held in SharedArrayBuffers (a worker cannot see the
 *            caller's ordinary memory); other updates are summed on the calling thread alone.
 */

/** Coordinates staged per update and kernel call: 8 updates × 4,096 × 4 bytes = 128 KiB, inside a core's L2. */
export const CHUNK = 4096;

/** How the sum is computed: 'auto' = SIMD where the engine has it (Node ≥ 16), else scalar. */
export type SumKernelChoice = 'auto' | 'scalar';

export interface FusedSumOptions {
  /** Default 'auto'. 'scalar' forces the JavaScript loop (same bits, for comparison). */
  readonly kernel?: SumKernelChoice;
  /** 1 (default) or 2: with 2, a worker thread sums the upper half of the coordinates of shared updates. */
  readonly threads?: 1 | 2;
  /** Buffers of m float32 reserved inside the kernel's memory (see FusedSum.input). Default 0. */
  readonly inputBuffers?: number;
}

function align64(bytes: number): number {
  return Math.ceil(bytes / 64) * 64;
}

const WASM_PAGE = 65_536;
const WASM_MAX_BYTES = 65_536 * WASM_PAGE;

/**
 * An update as the kernel sees it: the byte offset of its coordinate 0 in the kernel's memory (an input buffer,
 * read without a copy), or an ordinary array (copied chunk by chunk into the staging area first).
 */
type Source = number | Float32Array;

/**
 * One sweep over coordinates [start, end), chunk by chunk; within a chunk, the updates in groups of up to MAX_FUSED
 * (each group one fused kernel call), so the chunk's float64 sums stay in the cache from the first group to the last
 * and memory sees each update once and the sum once. Per coordinate the order is the updates' order, as in the scalar
 * loop. Updates outside the kernel's memory are staged chunkwise first; the chunk's tail (not a multiple of 8) is done
 * in JavaScript with the same operations. `fresh`: the sum is logically zero and its memory is not read. `outPtr` ≥ 0:
 * also write float32(sum / d) of the chunk at outPtr (a float32 array in the kernel's memory) while it is in cache.
 * Self-contained (no imports, no closures): its source is also what the worker threads run (here and in
 * threaded-block-sum.ts).
 */
export function fusedPass(
  kernels: {
    readonly acc: readonly AccKernel[];
    readonly init: readonly AccKernel[];
    readonly quot: (sum: number, out: number, count: number, d: number) => void;
  },
  heap: Float32Array,
  sum: Float64Array,
  stagingPtr: number,
  chunk: number,
  maxFused: number,
  sources: readonly Source[],
  weights: readonly number[],
  start: number,
  end: number,
  fresh: boolean,
  outPtr: number,
  d: number,
): void {
  const n = sources.length;
  const p = [0, 0, 0, 0, 0, 0, 0, 0];
  const w = [0, 0, 0, 0, 0, 0, 0, 0];
  for (let s = start; s < end; s += chunk) {
    const e = Math.min(end, s + chunk);
    const len = e - s;
    const body = len - (len % 8);
    for (let g = 0; g < n; g += maxFused) {
      const k = Math.min(maxFused, n - g);
      const zero = fresh && g === 0;
      for (let j = 0; j < k; j += 1) {
        const source = sources[g + j]!;
        if (typeof source === 'number') {
          p[j] = source + 4 * s;
        } else {
          p[j] = stagingPtr + 4 * chunk * j;
          heap.set(source.subarray(s, e), p[j]! >> 2);
        }
        w[j] = weights[g + j]!;
      }
      if (body > 0) {
        // Unused trailing pairs are ignored by the k-update kernel.
        (zero ? kernels.init : kernels.acc)[k - 1]!(
          8 * s,
          body,
          p[0]!,
          w[0]!,
          p[1]!,
          w[1]!,
          p[2]!,
          w[2]!,
          p[3]!,
          w[3]!,
          p[4]!,
          w[4]!,
          p[5]!,
          w[5]!,
          p[6]!,
          w[6]!,
          p[7]!,
          w[7]!,
        );
      }
      for (let i = body; i < len; i += 1) {
        let v = zero ? 0 : sum[s + i]!;
        for (let j = 0; j < k; j += 1) v += w[j]! * heap[(p[j]! >> 2) + i]!;
        sum[s + i] = v;
      }
    }
    if (outPtr >= 0) {
      const body4 = len - (len % 4);
      if (body4 > 0) kernels.quot(8 * s, outPtr + 4 * s, body4, d);
      for (let i = body4; i < len; i += 1) heap[(outPtr >> 2) + s + i] = sum[s + i]! / d;
    }
  }
}

/** The worker thread of the two-core path: instantiates the kernel over the shared memory and runs fusedPass. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { module, memory, control, length, stagingPtr, chunk, maxFused } = workerData;
const instance = new WebAssembly.Instance(module, { env: { memory } });
const kernels = {
  acc: Array.from({ length: maxFused }, (_, j) => instance.exports['acc' + (j + 1)]),
  init: Array.from({ length: maxFused }, (_, j) => instance.exports['init' + (j + 1)]),
  quot: instance.exports.quot,
};
const heap = new Float32Array(memory.buffer);
const sum = new Float64Array(memory.buffer, 0, length);
const fusedPass = ${fusedPass.toString()};
parentPort.on('message', ({ seq, sources, weights, start, end, fresh, outPtr, d }) => {
  try {
    fusedPass(kernels, heap, sum, stagingPtr, chunk, maxFused, sources, weights, start, end, fresh, outPtr, d);
    Atomics.store(control, 0, seq);
  } catch (error) {
    parentPort.postMessage(String((error && error.stack) || error));
    Atomics.store(control, 0, -seq);
  }
  Atomics.notify(control, 0);
});
`;

/**
 * Parameter·updates below which one addition stays on the calling thread: waking the worker and waiting for it costs
 * tens of microseconds on a quiet machine (milliseconds on a loaded one), ~1 ms of work at 2M.
 */
const TWO_CORE_MIN_WORK = 1 << 21;

/** How long the calling thread waits for the worker's half before failing the aggregation. */
const WORKER_TIMEOUT_MS = 120_000;

class SecondCore {
  private readonly worker: Worker;
  private readonly control = new Int32Array(new SharedArrayBuffer(4));
  private seq = 0;

  constructor(module: WasmModule, memory: WasmMemory, length: number, stagingPtr: number) {
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { module, memory, control: this.control, length, stagingPtr, chunk: CHUNK, maxFused: MAX_FUSED },
    });
    this.worker.unref();
  }

  start(
    sources: readonly Source[],
    weights: readonly number[],
    range: { start: number; end: number; fresh: boolean; outPtr: number; d: number },
  ): number {
    this.seq = (this.seq % 0x3fffffff) + 1;
    this.worker.postMessage({ seq: this.seq, sources, weights, ...range });
    return this.seq;
  }

  /** Blocks until the worker has finished job `seq` (Atomics.wait: the caller's API stays synchronous). */
  join(seq: number): void {
    const deadline = Date.now() + WORKER_TIMEOUT_MS;
    for (;;) {
      const state = Atomics.load(this.control, 0);
      if (state === seq) return;
      if (state === -seq) {
        throw new AggregationException(
          AggregationErrorCode.InvalidParameter,
          'the second aggregation thread failed; the sum is incomplete (reset before reuse)',
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new AggregationException(
          AggregationErrorCode.InvalidParameter,
          `the second aggregation thread did not answer within ${WORKER_TIMEOUT_MS} ms; the sum is incomplete`,
        );
      }
      Atomics.wait(this.control, 0, state, Math.min(left, 1000));
    }
  }

  close(): Promise<number> {
    return this.worker.terminate();
  }
}

function isShared(u: Float32Array): boolean {
  return typeof SharedArrayBuffer === 'function' && u.buffer instanceof SharedArrayBuffer;
}

/**
 * A float64 vector of m sums, added to k updates at a time. Callers validate (length, weights, finiteness) first:
 * this class only computes. Memory: 8m bytes, plus with SIMD 128 KiB of staging per thread and 4m bytes per input
 * buffer asked for.
 */
export class FusedSum {
  /** What actually runs: SIMD falls back to 'scalar' where the engine lacks it or m exceeds wasm32 memory. */
  readonly kernel: 'simd' | 'scalar';
  /** Threads that share an addition (1 unless SIMD with threads: 2; see add). */
  readonly threads: 1 | 2;
  private readonly sum: Float64Array;
  private readonly instance: KernelInstance | null = null;
  private readonly memoryBuffer: ArrayBuffer | SharedArrayBuffer | null = null;
  private readonly heap: Float32Array | null = null;
  private readonly stagingPtr: number = 0;
  private readonly inputs: Float32Array[] = [];
  private readonly second: SecondCore | null = null;
  /** The sum is logically zero and its memory has not been cleared (reset defers the clearing). */
  private fresh = true;
  private twoCorePasses = 0;

  constructor(
    readonly length: number,
    options: FusedSumOptions = {},
  ) {
    const choice = options.kernel ?? 'auto';
    if (choice !== 'auto' && choice !== 'scalar') {
      throw new AggregationException(AggregationErrorCode.InvalidParameter, `unknown kernel ${String(choice)}`);
    }
    const wanted = options.threads ?? 1;
    if (wanted !== 1 && wanted !== 2) {
      throw new AggregationException(
        AggregationErrorCode.InvalidParameter,
        `threads must be 1 or 2, got ${String(wanted)}`,
      );
    }
    const inputCount = options.inputBuffers ?? 0;
    if (!Number.isInteger(inputCount) || inputCount < 0) {
      throw new AggregationException(
        AggregationErrorCode.InvalidParameter,
        `inputBuffers must be an integer ≥ 0, got ${String(inputCount)}`,
      );
    }
    const stagingBytes = MAX_FUSED * CHUNK * 4;
    const bytes = align64(8 * length) + wanted * stagingBytes + inputCount * align64(4 * length);
    const module = choice === 'auto' && bytes <= WASM_MAX_BYTES ? kernelModule(wanted === 2) : null;
    if (!module) {
      this.sum = new Float64Array(length);
      this.kernel = 'scalar';
      this.threads = 1;
      for (let j = 0; j < inputCount; j += 1) this.inputs.push(new Float32Array(length));
      return;
    }
    const pages = Math.ceil(bytes / WASM_PAGE);
    const Memory = wasmApi()!.Memory;
    const memory =
      wanted === 2
        ? new Memory({ initial: pages, maximum: pages, shared: true })
        : new Memory({ initial: pages, maximum: pages });
    this.instance = instantiateKernel(module, memory);
    this.memoryBuffer = memory.buffer;
    this.heap = new Float32Array(memory.buffer);
    this.sum = new Float64Array(memory.buffer, 0, length);
    this.stagingPtr = align64(8 * length);
    let next = this.stagingPtr + wanted * stagingBytes;
    for (let j = 0; j < inputCount; j += 1) {
      this.inputs.push(new Float32Array(memory.buffer, next, length));
      next += align64(4 * length);
    }
    this.kernel = 'simd';
    this.threads = wanted;
    if (wanted === 2) this.second = new SecondCore(module, memory, length, this.stagingPtr + stagingBytes);
  }

  /** Additions whose coordinates were shared with the worker thread (the others ran on the calling thread alone). */
  get passesOnTwoCores(): number {
    return this.twoCorePasses;
  }

  /** The sums, Σ wᵢ·uᵢ per coordinate (a view into the kernel's memory with SIMD). */
  get values(): Float64Array {
    if (this.fresh) this.clear();
    return this.sum;
  }

  /**
   * Input buffer j (of the `inputBuffers` asked for): an update written here — e.g. read from a file straight into
   * it — is summed without being copied into the kernel's memory first. Its contents are the caller's.
   */
  input(j: number): Float32Array {
    const buffer = this.inputs[j];
    if (!buffer) {
      throw new AggregationException(
        AggregationErrorCode.InvalidParameter,
        `input buffer ${j} does not exist (${this.inputs.length} were reserved)`,
      );
    }
    return buffer;
  }

  /**
   * values[i] ← (((values[i] + w₀·u₀[i]) + w₁·u₁[i]) + …) for every coordinate. No validation. With two threads the
   * upper half of the coordinates is summed by the worker when every update is visible to it (an input buffer or a
   * SharedArrayBuffer); otherwise the calling thread sums all of it.
   */
  add(updates: readonly Float32Array[], weights: readonly number[]): void {
    this.sweep(updates, weights, null);
  }

  /**
   * add, then out[i] = float32(values[i] / d) — in the same sweep when `out` is an input buffer (each chunk divided
   * while its sums are in the cache), else by quotient afterwards. The same bits either way.
   */
  addAndDivide(updates: readonly Float32Array[], weights: readonly number[], d: number, out: Float32Array): void {
    if (this.instance && out.buffer === this.memoryBuffer) {
      this.sweep(updates, weights, { d, outPtr: out.byteOffset });
    } else {
      this.sweep(updates, weights, null);
      this.quotient(d, out);
    }
  }

  private sweep(
    updates: readonly Float32Array[],
    weights: readonly number[],
    divide: { d: number; outPtr: number } | null,
  ): void {
    if (updates.length === 0 && !divide) return;
    if (!this.instance) {
      if (this.fresh) this.clear();
      updates.forEach((u, j) => accumulateScaled(this.sum, u, weights[j]!));
      this.fresh = false;
      return;
    }
    if (updates.length === 0 && this.fresh) this.clear();
    const sources: Source[] = updates.map((u) => (u.buffer === this.memoryBuffer ? u.byteOffset : u));
    const m = this.length;
    const fresh = this.fresh && updates.length > 0;
    const outPtr = divide ? divide.outPtr : -1;
    const d = divide ? divide.d : 1;
    const pass = (start: number, end: number): void =>
      fusedPass(
        this.instance!,
        this.heap!,
        this.sum,
        this.stagingPtr,
        CHUNK,
        MAX_FUSED,
        sources,
        weights,
        start,
        end,
        fresh,
        outPtr,
        d,
      );
    if (
      this.second &&
      m * Math.max(1, updates.length) >= TWO_CORE_MIN_WORK &&
      m >= 2 * CHUNK &&
      updates.every((u) => u.buffer === this.memoryBuffer || isShared(u))
    ) {
      const mid = Math.floor(m / 2 / CHUNK) * CHUNK;
      const seq = this.second.start(sources, weights, { start: mid, end: m, fresh, outPtr, d });
      pass(0, mid);
      this.second.join(seq);
      this.twoCorePasses += 1;
    } else {
      pass(0, m);
    }
    this.fresh = false;
  }

  /**
   * out[i] = float32(values[i] / d): true division, rounded once (the SIMD kernel computes the same bits). `out` may be
   * an input buffer, then written in place. (Tried: multiplying by 1/d and dividing only near float32 rounding
   * boundaries — provably the same bits, but V8's 64-bit lane comparisons made it twice slower than the division.)
   */
  quotient(d: number, out: Float32Array): void {
    const s = this.values;
    const m = this.length;
    if (!this.instance) {
      for (let i = 0; i < m; i += 1) out[i] = s[i]! / d;
      return;
    }
    const heap = this.heap!;
    if (out.buffer === this.memoryBuffer) {
      // `out` is in the kernel's memory (an input buffer): written in place, no staging copy.
      const body = m - (m % 4);
      this.instance.quot(0, out.byteOffset, body, d);
      for (let i = body; i < m; i += 1) out[i] = s[i]! / d;
      return;
    }
    const at = this.stagingPtr >> 2;
    for (let start = 0; start < m; start += CHUNK) {
      const end = Math.min(m, start + CHUNK);
      const len = end - start;
      const body = len - (len % 4);
      if (body > 0) this.instance.quot(8 * start, this.stagingPtr, body, d);
      for (let i = body; i < len; i += 1) heap[at + i] = s[start + i]! / d;
      out.set(heap.subarray(at, at + len), start);
    }
  }

  /** Back to a zero sum. The memory is cleared lazily: the next add starts from zero without reading it. */
  reset(): void {
    this.fresh = true;
  }

  private clear(): void {
    this.sum.fill(0);
    this.fresh = false;
  }

  /** Stops the worker thread of the two-core path (it is unref'd: an unclosed sum does not keep a process alive). */
  async close(): Promise<void> {
    if (this.second) await this.second.close();
  }
}

/**
 * acc[i] += w · u[i]. The hot loop of aggregation (reads 4 + 8 bytes and writes 8 per parameter). Unrolled by
 * eight: at m = 1M on the 2-core benchmark machine a plain loop measured 1.6–4.7 ns per parameter, four-way
 * 1.1–1.4 ns, eight-way 0.8–0.9 ns. The m % 8 leftovers are done FIRST, so the hot loop is the last code V8 sees
 * before compiling it on-stack (see squaredNorm for the deoptimisation this avoids).
 */
export function accumulateScaled(acc: Float64Array, u: Float32Array, w: number): void {
  const n = acc.length;
  const head = n % 8;
  let i = 0;
  for (; i < head; i += 1) acc[i]! += w * u[i]!;
  for (; i < n; i += 8) {
    acc[i]! += w * u[i]!;
    acc[i + 1]! += w * u[i + 1]!;
    acc[i + 2]! += w * u[i + 2]!;
    acc[i + 3]! += w * u[i + 3]!;
    acc[i + 4]! += w * u[i + 4]!;
    acc[i + 5]! += w * u[i + 5]!;
    acc[i + 6]! += w * u[i + 6]!;
    acc[i + 7]! += w * u[i + 7]!;
  }
}
