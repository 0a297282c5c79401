import type { UpdateBlockReader, UpdateBlockSource } from '@tessera/aggregation';
import { readFramePrefix } from '@tessera/protocol';
import type { BlobStore } from '../blobs/blob-store';

/** Bytes of an update frame's fixed prefix: 4 of magic, 4 of header length (libs/protocol rounds.ts). */
const FRAME_PREFIX_BYTES = 8;

/** Where one stored update's float32 payload starts in its blob. */
interface StoredPayload {
  readonly hash: string;
  readonly offset: number;
  /** The blob's bytes before the payload (the frame's prefix and header): hashed with it to check the blob's name. */
  readonly leading: Uint8Array;
}

/**
 * The round's stored updates as @tessera/aggregation's UpdateBlockReader: block [start, end) of update k is one
 * ranged read of its framed blob (BlobStore.readRange), copied into an aligned Float32Array, so a blockwise
 * aggregation or screening holds n blocks at a time instead of n whole updates.
 *
 * A ranged read cannot be checked against the blob's name (the name covers the whole blob). Either the round closer
 * verifies every update whole before the round reads it, or — FedAvg and DP-FedAvg on the fused sum — the sum hashes
 * each update as it reads it (its `leadingBytes`, then every block of the payload, in order) and the result is
 * checked against the names before it is used (ADR 0021). The robust aggregators and screening also check each
 * block's length and values as they read them.
 */
export class BlobUpdateReader implements UpdateBlockReader, UpdateBlockSource {
  private constructor(
    private readonly blobs: BlobStore,
    private readonly payloads: readonly StoredPayload[],
    readonly length: number,
  ) {}

  /**
   * A reader over the framed updates named by `hashes` (in that order), each holding `length` float32 values:
   * reads every frame's prefix and checks that its payload is exactly `length` values.
   */
  static async open(blobs: BlobStore, hashes: readonly string[], length: number): Promise<BlobUpdateReader> {
    const payloads: StoredPayload[] = [];
    for (const hash of hashes) {
      const headerBytes = readFramePrefix(await blobs.readRange(hash, 0, FRAME_PREFIX_BYTES));
      const offset = FRAME_PREFIX_BYTES + headerBytes;
      const size = await blobs.size(hash);
      if (size !== offset + 4 * length) {
        throw new Error(
          `the stored update ${hash} holds ${(size - offset) / 4} values after its header; the model has ${length}`,
        );
      }
      payloads.push({ hash, offset, leading: await blobs.readRange(hash, 0, offset) });
    }
    return new BlobUpdateReader(blobs, payloads, length);
  }

  get count(): number {
    return this.payloads.length;
  }

  /** The bytes of update k's blob before its values (the frame's prefix and header, as read when opened). */
  leadingBytes(update: number): Uint8Array {
    return this.payload(update).leading;
  }

  async readBlock(update: number, start: number, end: number): Promise<Float32Array> {
    const payload = this.payload(update);
    const bytes = await this.blobs.readRange(payload.hash, payload.offset + 4 * start, payload.offset + 4 * end);
    // A copy: the bytes of a read need not start at a multiple of 4 in their buffer (the wire is little-endian, as
    // every host the hub runs on; model-math.ts float32FromBytes makes the same assumption).
    const values = new Float32Array(end - start);
    new Uint8Array(values.buffer).set(bytes);
    return values;
  }

  /**
   * Block [start, end) of update k written into `target` (the fused sum's slot in shared memory) by one ranged read
   * straight into place (BlobStore.readRangeInto: from the filesystem store, no buffer and no copy on this thread).
   * The values are not checked here: the receiver validated them on upload, and the closer checks the whole blob
   * against its name, before the round reads it or from the digest the sum computes as it reads.
   */
  async readInto(update: number, start: number, end: number, target: Float32Array): Promise<void> {
    const payload = this.payload(update);
    if (target.length !== end - start) throw new RangeError(`a slot of ${target.length} values for [${start}, ${end})`);
    const bytes = new Uint8Array(target.buffer, target.byteOffset, target.byteLength);
    await this.blobs.readRangeInto(payload.hash, payload.offset + 4 * start, bytes);
  }

  private payload(update: number): StoredPayload {
    const payload = this.payloads[update];
    if (!payload) throw new RangeError(`no update #${update} among ${this.payloads.length}`);
    return payload;
  }
}
