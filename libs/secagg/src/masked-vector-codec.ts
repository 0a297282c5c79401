// The wire and storage form of a vector modulo 2^k: its values bit-packed, k bits each, least significant bit first
// (value j occupies bits j·k … j·k + k − 1 of the little-endian bit stream). ⌈m·k/8⌉ bytes: at k = 32 exactly the
// size of a float32 upload, and smaller for smaller k.

import { SecAggErrorCode, SecAggException } from './secagg.exception';

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Bytes of an encoded vector of `length` values modulo 2^k. */
export function maskedVectorBytes(length: number, modulusBits: number): number {
  return Math.ceil((length * modulusBits) / 8);
}

/** Packs a vector of values below 2^k into ⌈m·k/8⌉ bytes. */
export function encodeMaskedVector(vector: Uint32Array, modulusBits: number): Uint8Array {
  assertBits(modulusBits);
  if (modulusBits === 32 && LITTLE_ENDIAN)
    return new Uint8Array(vector.buffer.slice(vector.byteOffset, vector.byteOffset + vector.byteLength));
  const out = new Uint8Array(maskedVectorBytes(vector.length, modulusBits));
  let bit = 0;
  for (let j = 0; j < vector.length; j++) {
    let value = vector[j]!;
    for (let remaining = modulusBits; remaining > 0;) {
      const offset = bit & 7;
      const take = Math.min(8 - offset, remaining);
      out[bit >>> 3]! |= (value & ((1 << take) - 1)) << offset;
      value >>>= take;
      remaining -= take;
      bit += take;
    }
  }
  return out;
}

/** Unpacks `length` values of k bits; MALFORMED_MESSAGE on a wrong byte count or non-zero padding bits. */
export function decodeMaskedVector(bytes: Uint8Array, length: number, modulusBits: number): Uint32Array {
  assertBits(modulusBits);
  const expected = maskedVectorBytes(length, modulusBits);
  if (bytes.length !== expected) {
    throw new SecAggException(
      SecAggErrorCode.MalformedMessage,
      `A vector of ${length} values of ${modulusBits} bits takes ${expected} bytes, got ${bytes.length}.`,
    );
  }
  if (modulusBits === 32 && LITTLE_ENDIAN) {
    return new Uint32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  }
  const out = new Uint32Array(length);
  let bit = 0;
  for (let j = 0; j < length; j++) {
    let value = 0;
    for (let got = 0; got < modulusBits;) {
      const offset = bit & 7;
      const take = Math.min(8 - offset, modulusBits - got);
      value += ((bytes[bit >>> 3]! >>> offset) & ((1 << take) - 1)) * 2 ** got;
      got += take;
      bit += take;
    }
    out[j] = value;
  }
  if ((bit & 7) !== 0 && bytes[bytes.length - 1]! >>> (bit & 7) !== 0) {
    throw new SecAggException(SecAggErrorCode.MalformedMessage, 'The padding bits of an encoded vector are not zero.');
  }
  return out;
}

function assertBits(modulusBits: number): void {
  if (!Number.isInteger(modulusBits) || modulusBits < 1 || modulusBits > 32) {
    throw new SecAggException(SecAggErrorCode.InvalidParameters, `modulusBits must be in [1, 32], got ${modulusBits}.`);
  }
}
