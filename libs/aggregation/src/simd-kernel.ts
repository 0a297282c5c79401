/*
 * The FedAvg accumulation kernel in WebAssembly SIMD, assembled here from its instructions (no toolchain, no
 * download, no binary blob in the repository: the bytes below are the program, readable and reviewed as code).
 *
 * Exports of the module (all pointers are byte offsets into the imported memory, 16-byte aligned):
 *   acc1 … acc8 (sum, count, p0, w0, p1, w1, … p(k−1), w(k−1)):
 *       for i in [0, count):  s = sum[i]; s = s + w0·u0[i]; s = s + w1·u1[i]; …; sum[i] = s
 *       where sum is float64 at `sum`, and update j is float32 at pj. count must be a multiple of 8.
 *       The float64 sum is read and written once per k updates ("fused"); each update is read once.
 *   init1 … init8: the same with s = +0 instead of reading sum[i] (the first pass after a reset).
 *   quot (sum, out, count, d):  out[i] = float32(sum[i] / d), count a multiple of 4.
 *
 * Numerics: every operation is an IEEE-754 float64 operation with round-to-nearest (f64x2.mul, f64x2.add,
 * f64x2.div; promote float32→float64 is exact; demote float64→float32 rounds to nearest), no fused multiply-add,
 * in the same order per coordinate as the scalar `acc[i] += w * u[i]` applied update after update. So results are
 * bit-identical to the scalar JavaScript path (tested in weighted-mean-accumulator.spec.ts and simd-kernel.spec.ts).
 */

/** Largest number of updates one kernel call fuses. */
export const MAX_FUSED = 8;

const I32 = 0x7f;
const F64 = 0x7c;
const V128 = 0x7b;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function name(s: string): number[] {
  const bytes = Array.from(new TextEncoder().encode(s));
  return [...uleb(bytes.length), ...bytes];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function vector(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

// Instructions.
const get = (i: number) => [0x20, ...uleb(i)];
const set = (i: number) => [0x21, ...uleb(i)];
/** i32.const takes a SIGNED LEB128: 64 must be 0xc0 0x00 (0x40 alone would read as −64). Non-negative only here. */
function i32Const(v: number): number[] {
  const out: number[] = [0x41];
  for (;;) {
    const byte = v & 0x7f;
    v >>>= 7;
    if (v === 0 && (byte & 0x40) === 0) return [...out, byte];
    out.push(byte | 0x80);
  }
}
const I32_ADD = [0x6a];
const I32_SUB = [0x6b];
const I32_EQZ = [0x45];
const simd = (op: number, ...imm: number[]) => [0xfd, ...uleb(op), ...imm];
const memarg = (alignLog2: number, offset: number) => [alignLog2, ...uleb(offset)];
const v128Load = (offset: number) => simd(0x00, ...memarg(4, offset));
const v128Store = (offset: number) => simd(0x0b, ...memarg(4, offset));
const v128Load64Zero = (offset: number) => simd(0x5d, ...memarg(3, offset));
const F64X2_SPLAT = simd(0x14);
const V128_ZERO = simd(0x0c, ...new Array<number>(16).fill(0)); // v128.const 0
const F64X2_PROMOTE_LOW_F32X4 = simd(0x5f);
const F32X4_DEMOTE_F64X2_ZERO = simd(0x5e);
const F64X2_ADD = simd(0xf0);
const F64X2_MUL = simd(0xf2);
const F64X2_DIV = simd(0xf3);
// Lanes 0–7 of the first operand then lanes 0–7 of the second: two demoted pairs into one f32x4.
const SHUFFLE_LOW_HALVES = simd(0x0d, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
const BLOCK = [0x02, 0x40];
const LOOP = [0x03, 0x40];
const END = [0x0b];
const BR = (depth: number) => [0x0c, ...uleb(depth)];
const BR_IF = (depth: number) => [0x0d, ...uleb(depth)];

/**
 * Body of acc<k> (fresh = false) or init<k> (fresh = true): params sum 0, count 1, then pairs (p_j i32, w_j f64) at
 * 2+2j, 3+2j; locals: k splatted weights, 4 partial sums. init<k> starts each coordinate from +0 instead of reading the
 * sum — the same bits as reading a zeroed sum (+0 + x = x, and +0 + −0 = +0), one read of the sum fewer.
 */
function accBody(k: number, fresh: boolean): number[] {
  const SUM = 0;
  const COUNT = 1;
  const p = (j: number) => 2 + 2 * j;
  const w = (j: number) => 3 + 2 * j;
  const wv = (j: number) => 2 + 2 * k + j;
  const a = (q: number) => 2 + 3 * k + q;
  const code: number[] = [];
  for (let j = 0; j < k; j += 1) code.push(...get(w(j)), ...F64X2_SPLAT, ...set(wv(j)));
  code.push(...BLOCK, ...LOOP);
  code.push(...get(COUNT), ...I32_EQZ, ...BR_IF(1));
  // Eight coordinates per iteration: four independent float64 pairs, so the k dependent adds of one pair overlap.
  for (let q = 0; q < 4; q += 1) {
    if (fresh) code.push(...V128_ZERO, ...set(a(q)));
    else code.push(...get(SUM), ...v128Load(16 * q), ...set(a(q)));
  }
  for (let j = 0; j < k; j += 1) {
    for (let q = 0; q < 4; q += 1) {
      code.push(
        ...get(a(q)),
        ...get(p(j)),
        ...v128Load64Zero(8 * q),
        ...F64X2_PROMOTE_LOW_F32X4,
        ...get(wv(j)),
        ...F64X2_MUL,
        ...F64X2_ADD,
        ...set(a(q)),
      );
    }
    code.push(...get(p(j)), ...i32Const(32), ...I32_ADD, ...set(p(j)));
  }
  for (let q = 0; q < 4; q += 1) code.push(...get(SUM), ...get(a(q)), ...v128Store(16 * q));
  code.push(...get(SUM), ...i32Const(64), ...I32_ADD, ...set(SUM));
  code.push(...get(COUNT), ...i32Const(8), ...I32_SUB, ...set(COUNT));
  code.push(...BR(0), ...END, ...END, ...END);
  const locals = vector([
    [...uleb(k), V128],
    [...uleb(4), V128],
  ]);
  return [...locals, ...code];
}

/** Body of quot: params sum 0, out 1, count 2, d 3; local dv 4 (v128). */
function quotBody(): number[] {
  const code: number[] = [...get(3), ...F64X2_SPLAT, ...set(4), ...BLOCK, ...LOOP];
  code.push(...get(2), ...I32_EQZ, ...BR_IF(1));
  code.push(...get(1));
  code.push(...get(0), ...v128Load(0), ...get(4), ...F64X2_DIV, ...F32X4_DEMOTE_F64X2_ZERO);
  code.push(...get(0), ...v128Load(16), ...get(4), ...F64X2_DIV, ...F32X4_DEMOTE_F64X2_ZERO);
  code.push(...SHUFFLE_LOW_HALVES, ...v128Store(0));
  code.push(...get(0), ...i32Const(32), ...I32_ADD, ...set(0));
  code.push(...get(1), ...i32Const(16), ...I32_ADD, ...set(1));
  code.push(...get(2), ...i32Const(4), ...I32_SUB, ...set(2));
  code.push(...BR(0), ...END, ...END, ...END);
  return [...vector([[1, V128]]), ...code];
}

/** The module's bytes; `shared` imports a shared memory (threads), for the two-core path. */
export function kernelModuleBytes(shared: boolean): Uint8Array {
  const types: number[][] = [];
  for (let k = 1; k <= MAX_FUSED; k += 1) {
    const params = [[I32], [I32], ...Array.from({ length: k }, () => [[I32], [F64]]).flat()];
    types.push([0x60, ...vector(params), 0]);
  }
  types.push([0x60, ...vector([[I32], [I32], [I32], [F64]]), 0]);
  // Memory import: min 1 page; shared memories must declare a maximum (65,536 pages = 4 GiB, the wasm32 limit).
  const limits = shared ? [0x03, ...uleb(1), ...uleb(65_536)] : [0x00, ...uleb(1)];
  const imports = vector([[...name('env'), ...name('memory'), 0x02, ...limits]]);
  // Functions: acc1…acc8 (types 0…7), init1…init8 (types 0…7), quot (type 8).
  const kinds = Array.from({ length: MAX_FUSED }, (_, j) => j);
  const functions = vector([...kinds, ...kinds, MAX_FUSED].map((t) => uleb(t)));
  const exportSection = vector([
    ...kinds.map((j) => [...name(`acc${j + 1}`), 0x00, ...uleb(j)]),
    ...kinds.map((j) => [...name(`init${j + 1}`), 0x00, ...uleb(MAX_FUSED + j)]),
    [...name('quot'), 0x00, ...uleb(2 * MAX_FUSED)],
  ]);
  const bodies = [...kinds.map((j) => accBody(j + 1, false)), ...kinds.map((j) => accBody(j + 1, true)), quotBody()];
  const code = vector(bodies.map((body) => [...uleb(body.length), ...body]));
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vector(types)),
    ...section(2, imports),
    ...section(3, functions),
    ...section(7, exportSection),
    ...section(10, code),
  ]);
}

/**
 * (sum, count, p0, w0, p1, w1, …): pointer and weight of each update in turn. Extra arguments are ignored by
 * WebAssembly, so a caller may always pass eight pairs (no argument array per call).
 */
export type AccKernel = (sum: number, count: number, ...pointerWeightPairs: number[]) => void;

export interface KernelInstance {
  /** acc[k − 1] fuses k updates into the sum. */
  readonly acc: readonly AccKernel[];
  /** init[k − 1]: the same from a zero sum, without reading it. */
  readonly init: readonly AccKernel[];
  readonly quot: (sum: number, out: number, count: number, d: number) => void;
}

/*
 * The few WebAssembly JS-API types used here, declared locally: the workspace compiles against lib ES2023 and
 * @types/node 20, neither of which declares the WebAssembly namespace.
 */
/** A compiled module (opaque; structured-cloneable to worker threads). */
export type WasmModule = object & { readonly __wasmModule?: never };
/** A linear memory: its buffer is a SharedArrayBuffer when created with `shared: true`. */
export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { readonly exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
}

/** The engine's WebAssembly API, or undefined. */
export function wasmApi(): WasmApi | undefined {
  return (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
}

const modules = new Map<boolean, WasmModule | null>();

/**
 * The compiled module (cached per process), or null where this engine has no WebAssembly SIMD (or, for `shared`,
 * no threads): callers then take the scalar JavaScript path, which computes the same bits. TESSERA_AGGREGATION_SIMD=0
 * forces the scalar path (for comparison and as an operator's escape hatch).
 */
export function kernelModule(shared: boolean): WasmModule | null {
  if (modules.has(shared)) return modules.get(shared)!;
  let module: WasmModule | null = null;
  const api = wasmApi();
  if (process.env['TESSERA_AGGREGATION_SIMD'] !== '0' && api) {
    const bytes = kernelModuleBytes(shared);
    if (api.validate(bytes)) module = new api.Module(bytes);
  }
  modules.set(shared, module);
  return module;
}

/** An instance of the kernel over `memory` (which must be shared exactly when the module is). */
export function instantiateKernel(module: WasmModule, memory: WasmMemory): KernelInstance {
  const instance = new (wasmApi()!.Instance)(module, { env: { memory } });
  const e = instance.exports;
  return {
    acc: Array.from({ length: MAX_FUSED }, (_, j) => e[`acc${j + 1}`] as AccKernel),
    init: Array.from({ length: MAX_FUSED }, (_, j) => e[`init${j + 1}`] as AccKernel),
    quot: e['quot'] as KernelInstance['quot'],
  };
}
