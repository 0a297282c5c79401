import { SecAggErrorCode, SecAggException } from './secagg.exception';

/** Standard base64 (RFC 4648 section 4) of some bytes. */
export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

const BASE64_PATTERN = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Decodes standard base64 into a plain Uint8Array (never a Buffer: shamir-secret-sharing checks the constructor) and
 * checks its length. Node's decoder silently skips invalid characters, so the alphabet is checked first.
 */
export function fromBase64(text: string, expectedLength: number | null, what: string): Uint8Array {
  if (!BASE64_PATTERN.test(text) || text.length % 4 !== 0) {
    throw new SecAggException(SecAggErrorCode.MalformedMessage, `${what} is not standard base64.`);
  }
  const bytes = new Uint8Array(Buffer.from(text, 'base64'));
  if (expectedLength !== null && bytes.length !== expectedLength) {
    throw new SecAggException(
      SecAggErrorCode.MalformedMessage,
      `${what} must be ${expectedLength} bytes, got ${bytes.length}.`,
    );
  }
  return bytes;
}

/** Lowercase hex of some bytes. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Bytes of a lowercase hex string of exactly `expectedLength` bytes. */
export function fromHex(text: string, expectedLength: number, what: string): Uint8Array {
  if (!/^[0-9a-f]*$/.test(text) || text.length !== expectedLength * 2) {
    throw new SecAggException(
      SecAggErrorCode.MalformedMessage,
      `${what} must be ${expectedLength} bytes of lowercase hex.`,
    );
  }
  return new Uint8Array(Buffer.from(text, 'hex'));
}

/** One field of a length-prefixed encoding: text (UTF-8), bytes, or a number (IEEE 754 binary64, big-endian). */
export type EncodedField = string | Uint8Array | number;

/**
 * An unambiguous byte encoding of a labelled tuple: the label, then every field as a 1-byte type tag, a 4-byte
 * big-endian length and its bytes. Used for everything that is signed, hashed or fed to HKDF as `info`, so that no two
 * different tuples can encode alike (the classic concatenation ambiguity, e.g. ("ab","c") against ("a","bc")).
 */
export function encodeTuple(label: string, fields: readonly EncodedField[]): Buffer {
  const parts: Buffer[] = [];
  const push = (tag: number, bytes: Uint8Array): void => {
    const head = Buffer.alloc(5);
    head.writeUInt8(tag, 0);
    head.writeUInt32BE(bytes.byteLength, 1);
    parts.push(head, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  };
  push(0, Buffer.from(label, 'utf8'));
  for (const field of fields) {
    if (typeof field === 'string') push(1, Buffer.from(field, 'utf8'));
    else if (typeof field === 'number') {
      const number = Buffer.alloc(8);
      number.writeDoubleBE(field, 0);
      push(2, number);
    } else push(3, field);
  }
  return Buffer.concat(parts);
}
