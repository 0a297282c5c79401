import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { parseUpdateHeader, readFramePrefix, UpdateFrameError, type UpdateHeader } from '@tessera/protocol';
import type { StagedBlob } from '../blobs/blob-store';
import { HubErrorCode, HubException } from '../common/hub.exception';

/** What the hub measured while streaming an update into the blob store. */
export interface ReceivedUpdate {
  header: UpdateHeader;
  /** L2 norm recomputed by the hub (double accumulation). */
  l2Norm: number;
  payloadSha256: string;
}

function malformed(message: string): HubException {
  return new HubException(HubErrorCode.UPDATE_MALFORMED, message);
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
 * declared one. Memory stays at one chunk whatever the model's size. On any refusal the staged bytes are dropped.
 */
export async function receiveUpdate(
  body: Readable,
  staged: StagedBlob,
  checkHeader: (header: UpdateHeader) => Promise<void> | void,
): Promise<ReceivedUpdate> {
  const iterator = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const carry = { bytes: Buffer.alloc(0) };
  try {
    let header: UpdateHeader;
    try {
      const prefix = await readExactly(iterator, carry, 8);
      const headerBytes = await readExactly(iterator, carry, readFramePrefix(prefix));
      header = parseUpdateHeader(headerBytes);
      await staged.write(prefix);
      await staged.write(headerBytes);
    } catch (err) {
      if (err instanceof UpdateFrameError) throw malformed(err.message);
      throw err;
    }
    await checkHeader(header);

    const expectedBytes = header.length * 4;
    const payloadHash = createHash('sha256');
    let received = 0;
    let sumSquares = 0;
    let pending = Buffer.alloc(0); // a float split across two chunks
    const consume = async (chunk: Buffer) => {
      if (chunk.length === 0) return;
      received += chunk.length;
      if (received > expectedBytes) {
        throw malformed(`the payload is longer than the ${header.length} float32 values its header announces`);
      }
      payloadHash.update(chunk);
      await staged.write(chunk);
      const data = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      const whole = data.length - (data.length % 4);
      for (let off = 0; off < whole; off += 4) {
        const v = data.readFloatLE(off);
        if (!Number.isFinite(v))
          throw malformed(`value ${(received - data.length + off) / 4} of the update is not finite`);
        sumSquares += v * v;
      }
      pending = Buffer.from(data.subarray(whole));
    };
    await consume(carry.bytes);
    for (;;) {
      const next = await iterator.next();
      if (next.done) break;
      await consume(next.value);
    }
    if (received !== expectedBytes) {
      throw malformed(
        `the payload has ${received} bytes; the header announces ${header.length} float32 values (${expectedBytes} bytes)`,
      );
    }
    const payloadSha256 = payloadHash.digest('hex');
    if (payloadSha256 !== header.payloadSha256) {
      throw malformed('the payload does not match the sha256 in its header (corrupted in transit?)');
    }
    const l2Norm = Math.sqrt(sumSquares);
    // float32 sums in a different order differ in the last digits: allow a small relative tolerance.
    if (Math.abs(l2Norm - header.l2Norm) > 1e-4 * Math.max(1, l2Norm)) {
      throw malformed(`the declared L2 norm ${header.l2Norm} does not match the payload's ${l2Norm}`);
    }
    return { header, l2Norm, payloadSha256 };
  } catch (err) {
    await staged.abort();
    body.resume(); // drain what the client is still sending, so it reads our answer
    throw err;
  }
}
