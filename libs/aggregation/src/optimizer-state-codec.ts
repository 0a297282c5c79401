import { AggregationErrorCode, AggregationException } from './aggregation.exception';
import type { ServerOptimizerAlgorithm } from './aggregation-trace';

/**
 * Byte layout of a persisted server-optimizer state (all little-endian):
 *
 *   0  4  magic "TSOS" (Tessera server-optimizer state)
 *   4  2  format version (1)
 *   6  1  algorithm code (1 fedavg, 2 fedavgm, 3 fedadagrad, 4 fedadam, 5 fedyogi)
 *   7  1  number of state vectors k (0 for FedAvg, 1 for FedAvgM, 2 for the adaptive ones: m then v)
 *   8  4  m, parameters per vector
 *  12  4  rounds applied so far
 *  16 40  five float64 hyperparameters (learning rate, then algorithm-specific, unused = 0)
 *  56  4  CRC-32 (IEEE) of bytes [0, 56) and [64, end)
 *  60  4  reserved, must be 0
 *  64     k · m float32 values
 *
 * The header is 64 bytes so the payload stays 4- and 8-byte aligned inside the buffer.
 */
export const STATE_MAGIC = 0x534f5354; // "TSOS" read as a little-endian uint32
export const STATE_VERSION = 1;
export const STATE_HEADER_BYTES = 64;
const HYPERPARAMETER_SLOTS = 5;

export const ALGORITHM_CODES: Readonly<Record<ServerOptimizerAlgorithm, number>> = {
  fedavg: 1,
  fedavgm: 2,
  fedadagrad: 3,
  fedadam: 4,
  fedyogi: 5,
};

export interface OptimizerStateSnapshot {
  readonly algorithm: ServerOptimizerAlgorithm;
  readonly length: number;
  readonly round: number;
  /** Up to five numbers, in a fixed per-algorithm order. */
  readonly hyperparameters: readonly number[];
  readonly vectors: readonly Float32Array[];
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE 802.3 polynomial, reflected 0xEDB88320), continuing from `crc` (start with 0). */
export function crc32(bytes: Uint8Array, crc = 0): number {
  if (crcTable === undefined) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n += 1) {
      let c = n;
      for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  const t = crcTable;
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i += 1) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

function checksum(bytes: Uint8Array): number {
  const head = crc32(bytes.subarray(0, 56));
  return crc32(bytes.subarray(STATE_HEADER_BYTES), head);
}

/** Encodes a snapshot into the layout above. */
export function encodeOptimizerState(state: OptimizerStateSnapshot): Uint8Array {
  const k = state.vectors.length;
  const bytes = new Uint8Array(STATE_HEADER_BYTES + k * state.length * 4);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, STATE_MAGIC, true);
  view.setUint16(4, STATE_VERSION, true);
  view.setUint8(6, ALGORITHM_CODES[state.algorithm]);
  view.setUint8(7, k);
  view.setUint32(8, state.length, true);
  view.setUint32(12, state.round, true);
  for (let j = 0; j < HYPERPARAMETER_SLOTS; j += 1) view.setFloat64(16 + 8 * j, state.hyperparameters[j] ?? 0, true);
  for (let v = 0; v < k; v += 1) {
    const offset = STATE_HEADER_BYTES + v * state.length * 4;
    if (LITTLE_ENDIAN) {
      new Float32Array(bytes.buffer, offset, state.length).set(state.vectors[v]!);
    } else {
      for (let i = 0; i < state.length; i += 1) view.setFloat32(offset + 4 * i, state.vectors[v]![i]!, true);
    }
  }
  view.setUint32(56, checksum(bytes), true);
  return bytes;
}

function corrupt(message: string): AggregationException {
  return new AggregationException(AggregationErrorCode.StateCorrupt, `optimizer state is corrupt: ${message}`);
}

function mismatch(message: string): AggregationException {
  return new AggregationException(AggregationErrorCode.StateMismatch, `optimizer state does not fit: ${message}`);
}

/**
 * Decodes and checks bytes written by encodeOptimizerState against what the caller expects. Throws StateCorrupt
 * (size, magic, version, checksum, reserved bits, non-finite values) or StateMismatch (algorithm, length, vector
 * count, hyperparameters). Returns fresh vectors; never aliases `bytes`.
 */
export function decodeOptimizerState(
  bytes: Uint8Array,
  expected: Omit<OptimizerStateSnapshot, 'round' | 'vectors'> & { readonly vectorCount: number },
): OptimizerStateSnapshot {
  if (!(bytes instanceof Uint8Array)) throw corrupt('expected a Uint8Array');
  if (bytes.length < STATE_HEADER_BYTES) throw corrupt(`${bytes.length} bytes is shorter than the header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== STATE_MAGIC) throw corrupt('bad magic');
  const version = view.getUint16(4, true);
  if (version !== STATE_VERSION) throw corrupt(`unsupported version ${version}`);
  if (view.getUint32(60, true) !== 0) throw corrupt('reserved bytes are not zero');
  const k = view.getUint8(7);
  const length = view.getUint32(8, true);
  if (bytes.length !== STATE_HEADER_BYTES + k * length * 4) {
    throw corrupt(`${bytes.length} bytes, header announces ${k} vectors of ${length}`);
  }
  if (view.getUint32(56, true) !== checksum(bytes)) throw corrupt('checksum mismatch');

  const code = view.getUint8(6);
  if (code !== ALGORITHM_CODES[expected.algorithm]) {
    const found = Object.entries(ALGORITHM_CODES).find(([, c]) => c === code)?.[0] ?? `code ${code}`;
    throw mismatch(`written by ${found}, this optimizer is ${expected.algorithm}`);
  }
  if (length !== expected.length) throw mismatch(`length ${length}, expected ${expected.length}`);
  if (k !== expected.vectorCount) throw mismatch(`${k} state vectors, expected ${expected.vectorCount}`);
  const hyperparameters: number[] = [];
  for (let j = 0; j < HYPERPARAMETER_SLOTS; j += 1) {
    const found = view.getFloat64(16 + 8 * j, true);
    const wanted = expected.hyperparameters[j] ?? 0;
    if (!Object.is(found, wanted)) throw mismatch(`hyperparameter #${j} is ${found}, configured ${wanted}`);
    hyperparameters.push(found);
  }
  const vectors: Float32Array[] = [];
  for (let v = 0; v < k; v += 1) {
    const offset = STATE_HEADER_BYTES + v * length * 4;
    // Copy into a fresh, aligned buffer so the view never aliases the caller's bytes. Uint8Array.prototype.slice,
    // not bytes.slice: on a Node Buffer the latter is a view into a shared pool, not a copy.
    const out = LITTLE_ENDIAN
      ? new Float32Array(Uint8Array.prototype.slice.call(bytes, offset, offset + length * 4).buffer)
      : new Float32Array(length);
    if (!LITTLE_ENDIAN) {
      for (let i = 0; i < length; i += 1) out[i] = view.getFloat32(offset + 4 * i, true);
    }
    for (let i = 0; i < length; i += 1) {
      if (!Number.isFinite(out[i])) throw corrupt(`vector ${v} holds a non-finite value at ${i}`);
    }
    vectors.push(out);
  }
  return { algorithm: expected.algorithm, length, round: view.getUint32(12, true), hyperparameters, vectors };
}
