import type { Readable } from 'node:stream';
import { squaredNorm } from '@tessera/aggregation';
import { parseUpdateHeader, readFramePrefix, UpdateFrameError, type UpdateHeader } from '@tessera/protocol';
import type { StagedBlob } from '../blobs/blob-store';
import { OffThreadSha256 } from '../blobs/off-thread-sha256';
import { HubErrorCode, HubException } from '../common/hub.exception';

/** What the hub measured while streaming an update into the blob store. */
export interface ReceivedUpdate {
  header: UpdateHeader;
  /** L2 norm recomputed by the hub (double accumulation). */
  l2Norm: number;
  payloadSha256: string;
  /** SHA-256 of the whole frame as received (prefix, header and payload): the name its blob would have. */
  frameSha256: string;
}

/** Staged-blob writes are made in batches of at least this many bytes (256 KiB): bounded memory, few syscalls. */
const WRITE_BATCH_BYTES = 1 << 18;

function malformed(message: string): HubException {
  return new HubException(HubErrorCode.UPDATE_MALFORMED, message);
}

/** True on little-endian hosts (x64, arm64): a Float32Array view then reads the wire's little-endian floats as is. */
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Checks a stream of little-endian float32 bytes chunk by chunk: every value finite, and the float64 sum of squares.
 * Whole chunks are read through aligned Float32Array views (a chunk whose byte offset is not a multiple of 4 is first
 * copied into an aligned scratch buffer; a memcpy is far cheaper than per-value Buffer.readFloatLE); a float split
 * across two chunks is carried over (at most 3 bytes) and completed by the next chunk. Memory: one scratch buffer of
 * the largest unaligned chunk.
 */
export class Float32StreamCheck {
  private sum = 0;
  private valuesSeen = 0;
  /** Bytes of a float whose remaining bytes have not arrived yet (0–3 used). */
  private readonly partial = new Uint8Array(4);
  private partialLength = 0;
  private scratch = new Float32Array(0);

  /** Float64 sum of the squares of the complete values so far. */
  get sumSquares(): number {
    return this.sum;
  }

  /** Complete values seen so far. */
  get count(): number {
    return this.valuesSeen;
  }

  /** Bytes of an incomplete trailing value (0 when the stream so far holds whole floats). */
  get pendingBytes(): number {
    return this.partialLength;
  }

  /** Consumes a chunk. Returns -1, or the index (in the whole stream) of the first non-finite value. */
  push(chunk: Uint8Array): number {
    let offset = 0;
    if (this.partialLength > 0) {
      const take = Math.min(4 - this.partialLength, chunk.length);
      this.partial.set(chunk.subarray(0, take), this.partialLength);
      this.partialLength += take;
      offset = take;
      if (this.partialLength < 4) return -1;
      this.partialLength = 0;
      const v = new DataView(this.partial.buffer).getFloat32(0, true);
      if (!Number.isFinite(v)) return this.valuesSeen;
      this.sum += v * v;
      this.valuesSeen += 1;
    }
    const whole = (chunk.length - offset) >> 2;
    if (whole > 0) {
      const view = this.floatView(chunk, offset, whole);
      const s = squaredNorm(view);
      // Float32 squares cannot overflow float64, so the sum is non-finite exactly when some value is.
      if (!Number.isFinite(s)) {
        for (let i = 0; i < view.length; i += 1) {
          if (!Number.isFinite(view[i])) return this.valuesSeen + i;
        }
      }
      this.sum += s;
      this.valuesSeen += whole;
      offset += whole * 4;
    }
    const rest = chunk.length - offset;
    if (rest > 0) {
      this.partial.set(chunk.subarray(offset), 0);
      this.partialLength = rest;
    }
    return -1;
  }

  private floatView(chunk: Uint8Array, offset: number, count: number): Float32Array {
    const start = chunk.byteOffset + offset;
    if (HOST_LITTLE_ENDIAN && start % 4 === 0) return new Float32Array(chunk.buffer, start, count);
    if (this.scratch.length < count) this.scratch = new Float32Array(count);
    const out = this.scratch.subarray(0, count);
    if (HOST_LITTLE_ENDIAN) {
      new Uint8Array(out.buffer, out.byteOffset, count * 4).set(chunk.subarray(offset, offset + count * 4));
    } else {
      const data = new DataView(chunk.buffer, start, count * 4);
      for (let i = 0; i < count; i += 1) out[i] = data.getFloat32(i * 4, true);
    }
    return out;
  }
}

/** Reads exactly `n` bytes from the front of the stream (for the prefix and the header). */
async function readExactly(iterator: AsyncIterator<Buffer>, carry: { bytes: Buffer }, n: number): Promise<Buffer> {
  while (carry.bytes.length < n) {
    const next = await iterator.next();
    if (next.done)
      throw malformed(`the update ended after ${carry.bytes.length} bytes, before its header was complete`);
    carry.bytes = Buffer.concat([carry.bytes, next.value]);
  }
  const out = carry.bytes.subarray(0, n);
  carry.bytes = carry.bytes.subarray(n);
  return out;
}

/**
 * Streams a framed update ('TSU1' | header length | header JSON | float32 payload) into a staged blob while
 * validating it: the header is checked by `checkHeader` before any payload byte is accepted; every value must be
 * finite; the payload must have exactly the announced length and SHA-256; the recomputed L2 norm must match the
 * declared one. Memory stays at one chunk whatever the model's size. On any refusal the staged bytes are dropped; on
 * success they stay staged (uncommitted): the caller commits them only once it accepts the update.
 */
export async function receiveUpdate(
  body: Readable,
  staged: StagedBlob,
  checkHeader: (header: UpdateHeader) => Promise<void> | void,
): Promise<ReceivedUpdate> {
  const iterator = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const carry = { bytes: Buffer.alloc(0) };
  // The frame's hash is the one the staged blob computes as it is written (its name once committed): a re-send of an
  // accepted update is recognised by it and never stored, without hashing the bytes a second time here.
  const write = (bytes: Buffer) => staged.write(bytes);
  // The payload's hash, checked against the header's claim; the frame's (the blob's name) is the staged blob's.
  // Both run on a worker thread past 256 KiB: the event loop pays a copy per byte, not the hash.
  const payloadHash = new OffThreadSha256();
  try {
    let header: UpdateHeader;
    try {
      const prefix = await readExactly(iterator, carry, 8);
      const headerBytes = await readExactly(iterator, carry, readFramePrefix(prefix));
      header = parseUpdateHeader(headerBytes);
      await write(prefix);
      await write(headerBytes);
    } catch (err) {
      if (err instanceof UpdateFrameError) throw malformed(err.message);
      throw err;
    }
    await checkHeader(header);

    const expectedBytes = header.length * 4;
    const values = new Float32StreamCheck();
    let received = 0;
    // Socket reads are 16–64 KiB; one awaited file write per read cost ~40 µs of main-thread time each (profile in
    // docs/benchmarks.md, ingest). Writes are coalesced into batches of WRITE_BATCH_BYTES: memory stays bounded.
    let batch: Buffer[] = [];
    let batchBytes = 0;
    const flush = async () => {
      if (batchBytes === 0) return;
      const bytes = batch.length === 1 ? batch[0]! : Buffer.concat(batch, batchBytes);
      batch = [];
      batchBytes = 0;
      // The payload hash takes the same batches: whole ones leave the hasher nothing to hold between writes.
      await payloadHash.ready(); // room first: 64 uploads posting at once would overshoot the bound k-fold
      payloadHash.update(bytes);
      await write(bytes);
    };
    const consume = async (chunk: Buffer) => {
      if (chunk.length === 0) return;
      received += chunk.length;
      if (received > expectedBytes) {
        throw malformed(`the payload is longer than the ${header.length} float32 values its header announces`);
      }
      const bad = values.push(chunk);
      if (bad >= 0) throw malformed(`value ${bad} of the update is not finite`);
      batch.push(chunk);
      batchBytes += chunk.length;
      if (batchBytes >= WRITE_BATCH_BYTES) await flush();
    };
    await consume(carry.bytes);
    for (;;) {
      const next = await iterator.next();
      if (next.done) break;
      await consume(next.value);
    }
    await flush();
    const sumSquares = values.sumSquares;
    if (received !== expectedBytes) {
      throw malformed(
        `the payload has ${received} bytes; the header announces ${header.length} float32 values (${expectedBytes} bytes)`,
      );
    }
    const payloadSha256 = await payloadHash.digest();
    if (payloadSha256 !== header.payloadSha256) {
      throw malformed('the payload does not match the sha256 in its header (corrupted in transit?)');
    }
    const l2Norm = Math.sqrt(sumSquares);
    // float32 sums in a different order differ in the last digits: allow a small relative tolerance.
    if (Math.abs(l2Norm - header.l2Norm) > 1e-4 * Math.max(1, l2Norm)) {
      throw malformed(`the declared L2 norm ${header.l2Norm} does not match the payload's ${l2Norm}`);
    }
    return { header, l2Norm, payloadSha256, frameSha256: await staged.hashSoFar() };
  } catch (err) {
    payloadHash.dispose();
    await staged.abort();
    body.resume(); // drain what the client is still sending, so it reads our answer
    throw err;
  }
}
