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
}

/** Bytes of memory the SIMD sum needs for m parameters (sum + one staging area per thread). */
function memoryBytes(m: number, threads: number): number {
  return align64(8 * m) + threads * MAX_FUSED * CHUNK * 4;
}

function align64(bytes: number): number {
  return Math.ceil(bytes / 64) * 64;
}

const WASM_PAGE = 65_536;
const WASM_MAX_BYTES = 65_536 * WASM_PAGE;

/**
 * One pass of up to MAX_FUSED updates at a time over coordinates [start, end): stage each update's chunk, run the
 * fused kernel on the chunk's multiple-of-8 body, finish the chunk's tail in JavaScript with the same operations.
 * Self-contained (no imports, no closures): its source is also what the worker thread runs.
 */
function fusedPass(
  acc: readonly AccKernel[],
  sum: Float64Array,
  staging: Float32Array,
  stagingPtr: number,
  chunk: number,
  maxFused: number,
  updates: readonly Float32Array[],
  weights: readonly number[],
  start: number,
  end: number,
): void {
  const n = updates.length;
  for (let g = 0; g < n; g += maxFused) {
    const k = Math.min(maxFused, n - g);
    const fn = acc[k - 1];
    const w = weights.slice(g, g + k);
    for (let s = start; s < end; s += chunk) {
      const e = Math.min(end, s + chunk);
      const len = e - s;
      for (let j = 0; j < k; j += 1) staging.set(updates[g + j].subarray(s, e), j * chunk);
      const body = len - (len % 8);
      if (body > 0) fn(8 * s, stagingPtr, 4 * chunk, body, w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]);
      for (let i = body; i < len; i += 1) {
        let v = sum[s + i];
        for (let j = 0; j < k; j += 1) v += w[j] * staging[j * chunk + i];
        sum[s + i] = v;
      }
    }
  }
}

/** The worker thread of the two-core path: instantiates the kernel over the shared memory and runs fusedPass. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { module, memory, control, length, stagingPtr, chunk, maxFused } = workerData;
const instance = new WebAssembly.Instance(module, { env: { memory } });
const acc = Array.from({ length: maxFused }, (_, j) => instance.exports['acc' + (j + 1)]);
const sum = new Float64Array(memory.buffer, 0, length);
const staging = new Float32Array(memory.buffer, stagingPtr, maxFused * chunk);
const fusedPass = ${fusedPass.toString()};
parentPort.on('message', ({ seq, updates, weights, start, end }) => {
  try {
    fusedPass(acc, sum, staging, stagingPtr, chunk, maxFused, updates, weights, start, end);
    Atomics.store(control, 0, seq);
  } catch (error) {
    parentPort.postMessage(String(error && error.stack || error));
    Atomics.store(control, 0, -seq);
  }
  Atomics.notify(control, 0);
});
`;

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

  start(updates: readonly Float32Array[], weights: readonly number[], start: number, end: number): number {
    this.seq = (this.seq % 0x3fffffff) + 1;
    this.worker.postMessage({ seq: this.seq, updates, weights, start, end });
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
 * this class only computes. Memory: 8m bytes (+128 KiB of staging per thread with SIMD).
 */
export class FusedSum {
  /** The sums, Σ wᵢ·uᵢ per coordinate (a view into the kernel's memory with SIMD). */
  readonly values: Float64Array;
  /** What actually runs: SIMD falls back to 'scalar' where the engine lacks it or m exceeds wasm32 memory. */
  readonly kernel: 'simd' | 'scalar';
  /** Threads that share an addition of updates held in SharedArrayBuffers (1 unless SIMD with threads: 2). */
  readonly threads: 1 | 2;
  private readonly instance: KernelInstance | null = null;
  private readonly staging: Float32Array | null = null;
  private readonly stagingPtr: number = 0;
  private readonly second: SecondCore | null = null;

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
      throw new AggregationException(AggregationErrorCode.InvalidParameter, `threads must be 1 or 2, got ${wanted}`);
    }
    const bytes = memoryBytes(length, wanted);
    const module = choice === 'auto' && bytes <= WASM_MAX_BYTES ? kernelModule(wanted === 2) : null;
    if (!module) {
      this.values = new Float64Array(length);
      this.kernel = 'scalar';
      this.threads = 1;
      return;
    }
    const pages = Math.ceil(bytes / WASM_PAGE);
    const Memory = wasmApi()!.Memory;
    const memory =
      wanted === 2
        ? new Memory({ initial: pages, maximum: pages, shared: true })
        : new Memory({ initial: pages, maximum: pages });
    this.instance = instantiateKernel(module, memory);
    this.values = new Float64Array(memory.buffer, 0, length);
    this.stagingPtr = align64(8 * length);
    this.staging = new Float32Array(memory.buffer, this.stagingPtr, MAX_FUSED * CHUNK);
    this.kernel = 'simd';
    this.threads = wanted;
    if (wanted === 2) {
      this.second = new SecondCore(module, memory, length, this.stagingPtr + MAX_FUSED * CHUNK * 4);
    }
  }

  /** values[i] ← (((values[i] + w₀·u₀[i]) + w₁·u₁[i]) + …) for every coordinate. No validation. */
  add(updates: readonly Float32Array[], weights: readonly number[]): void {
    if (!this.instance) {
      updates.forEach((u, j) => accumulateScaled(this.values, u, weights[j]!));
      return;
    }
    const m = this.length;
    if (this.second && m >= 2 * CHUNK && updates.every(isShared)) {
      const mid = Math.floor(m / 2 / CHUNK) * CHUNK;
      const seq = this.second.start(updates, weights, mid, m);
      fusedPass(
        this.instance.acc,
        this.values,
        this.staging!,
        this.stagingPtr,
        CHUNK,
        MAX_FUSED,
        updates,
        weights,
        0,
        mid,
      );
      this.second.join(seq);
      return;
    }
    fusedPass(this.instance.acc, this.values, this.staging!, this.stagingPtr, CHUNK, MAX_FUSED, updates, weights, 0, m);
  }

  /** out[i] = float32(values[i] / d): true division, rounded once (the SIMD kernel computes the same bits). */
  quotient(d: number, out: Float32Array): void {
    const s = this.values;
    const m = this.length;
    if (!this.instance) {
      for (let i = 0; i < m; i += 1) out[i] = s[i]! / d;
      return;
    }
    const staging = this.staging!;
    for (let start = 0; start < m; start += CHUNK) {
      const end = Math.min(m, start + CHUNK);
      const len = end - start;
      const body = len - (len % 4);
      if (body > 0) this.instance.quot(8 * start, this.stagingPtr, body, d);
      for (let i = body; i < len; i += 1) staging[i] = s[start + i]! / d;
      out.set(staging.subarray(0, len), start);
    }
  }

  reset(): void {
    this.values.fill(0);
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
  for (; i < head; i += 1) acc[i] += w * u[i];
  for (; i < n; i += 8) {
    acc[i] += w * u[i];
    acc[i + 1] += w * u[i + 1];
    acc[i + 2] += w * u[i + 2];
    acc[i + 3] += w * u[i + 3];
    acc[i + 4] += w * u[i + 4];
    acc[i + 5] += w * u[i + 5];
    acc[i + 6] += w * u[i + 6];
    acc[i + 7] += w * u[i + 7];
  }
}
