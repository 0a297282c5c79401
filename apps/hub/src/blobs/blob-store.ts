import { Readable } from 'node:stream';
import { BlobIntegrityError, BlobRangeError } from './blob-store.exception';
import { OffThreadSha256 } from './off-thread-sha256';

/** Bytes being written into the store; named by their SHA-256 only once committed. */
export interface StagedBlob {
  write(chunk: Uint8Array): Promise<void>;
  /**
   * The SHA-256 of the bytes written so far (the name they would commit under), without ending the staging. It is
   * the one hash computed over an upload's bytes at ingest (on a worker thread past 256 KiB, OffThreadSha256).
   */
  hashSoFar(): Promise<string>;
  /**
   * Ends the writing and brings the bytes where `commit` publishes them with the least work the medium allows (a
   * closed file in place for a rename; a completed staging object). Idempotent; `commit` does it when not done yet.
   * The hub calls it before its acceptance transaction, so that the transaction holds its locks (and, on the
   * embedded database, the one connection) over a rename rather than over a file close or an object-store upload.
   */
  finish(): Promise<void>;
  /** Stores the bytes under their SHA-256 (idempotent: the same content commits to the same name). */
  commit(): Promise<{ hash: string; size: number }>;
  /** Drops everything written; nothing remains in the store. */
  abort(): Promise<void>;
}

/** A blob's name: the lowercase hex SHA-256 of its bytes. */
export const BLOB_NAME = /^[0-9a-f]{64}$/;

/** Refuses anything but a blob name before it reaches a path or an object key. */
export function assertBlobName(hash: string): void {
  if (!BLOB_NAME.test(hash)) throw new Error(`not a sha256 blob name: ${hash}`);
}

/** Refuses a range that is not 0 ≤ start ≤ end in integers (BlobRangeError), before it reaches the medium. */
export function assertRange(hash: string, start: number, end: number): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new BlobRangeError(hash, start, end);
  }
}

/**
 * What the boot-time orphan sweep needs of a store (OrphanBlobSweepService): its committed blobs with their age, a
 * way to delete one, and the leftovers of uploads a killed process never finished. Only the sweep deletes blobs.
 */
export interface BlobListing {
  list(): AsyncGenerator<{ hash: string; modifiedAt: Date }>;
  remove(hash: string): Promise<void>;
  /** Staged bytes older than `before` (uploads a killed process never finished): deletes them, returns how many. */
  removeStaleStaging(before: Date): Promise<number>;
}

/**
 * Content-addressed storage for models, updates and optimizer state: a blob's name is the SHA-256 of its bytes.
 * The filesystem store is the default; the S3 store (any S3-compatible object store) implements the same port, and
 * both pass one contract suite (blob-store-contract.test-util.ts).
 *
 * Every read is checked against the name (issue 14, finding 15): `get` hashes the bytes before returning them,
 * `openRead` hashes as it streams and fails at the end with a BlobIntegrityError, withholding its last chunk, so a
 * reader never receives the whole of a corrupted blob. Write failures of the medium (read-only, full, permissions)
 * are thrown as BlobStorageUnavailableError, which the hub answers with 503 "try again".
 */
export abstract class BlobStore {
  abstract put(bytes: Uint8Array): Promise<string>;
  abstract stage(): Promise<StagedBlob>;
  /** The whole blob, verified against its name (BlobIntegrityError otherwise; BlobNotFoundError when missing). */
  abstract get(hash: string): Promise<Buffer>;
  /**
   * A stream of the blob that fails at its end with BlobIntegrityError when the bytes do not match the name, and at
   * once with BlobNotFoundError when there is no such blob.
   */
  abstract openRead(hash: string): Readable;
  /**
   * Bytes [start, end) of the blob, for reading a large blob piece by piece (blockwise aggregation reads blocks of
   * coordinates of every update of a round). NOT checked against the name — a part cannot be, the hash covers the
   * whole blob — so a caller verifies the whole blob first (`verify`, bounded memory) and still treats the bytes as
   * untrusted input (the aggregation library checks every value it reads). BlobNotFoundError when there is no such
   * blob; BlobRangeError unless 0 ≤ start ≤ end ≤ the blob's size.
   */
  abstract readRange(hash: string, start: number, end: number): Promise<Buffer>;
  /**
   * readRange into memory the caller owns: bytes [start, start + target.length) of the blob written into `target`
   * (e.g. a slot of the aggregation's shared memory). Same errors, same absence of a check against the name. This
   * default reads the range and copies it; a store that can read straight into `target` does (the filesystem store:
   * the read runs on libuv's thread pool, and the calling thread neither allocates nor copies the bytes).
   */
  async readRangeInto(hash: string, start: number, target: Uint8Array): Promise<void> {
    target.set(await this.readRange(hash, start, start + target.length));
  }
  abstract has(hash: string): Promise<boolean>;
  /** Bytes in the blob (BlobNotFoundError when there is none). */
  abstract size(hash: string): Promise<number>;
  /** Writes, syncs and deletes a probe file: resolves only when the store can take a blob right now. */
  abstract probeWritable(): Promise<void>;
  /** The store's blobs and staging leftovers, for the orphan sweep. */
  abstract listing(): BlobListing;

  /** Reads the whole blob through `openRead` (bounded memory); throws BlobIntegrityError when it is corrupted. */
  async verify(hash: string): Promise<void> {
    for await (const chunk of this.openRead(hash)) void chunk;
  }

  /**
   * For serving a blob to a client: checks the whole blob first, so a corrupted blob fails before a status line or
   * a byte is sent (the caller answers 500 instead of sending bad bytes under 200), then streams it, checking again
   * (the file could change between the two reads).
   */
  async openVerifiedRead(hash: string): Promise<Readable> {
    await this.verify(hash);
    return this.openRead(hash);
  }
}

/**
 * Passes `source` through while hashing it; at the end compares the SHA-256 with `hash`. The latest chunk is held
 * back until the next arrives, so on a mismatch the last chunk is never delivered and the stream fails instead.
 * Memory: one chunk. `onCorrupted` is told before the stream fails.
 */
export function verifyingStream(
  hash: string,
  source: AsyncIterable<Uint8Array>,
  onCorrupted: (err: BlobIntegrityError) => void = () => undefined,
): Readable {
  async function* checked(): AsyncGenerator<Uint8Array> {
    // Hashed on a worker thread past 256 KiB: serving or verifying a 40 MB model costs the event loop a copy, not
    // the hash. ready() holds the read back while the workers are behind (bounded memory).
    const digest = new OffThreadSha256();
    let held: Uint8Array | undefined;
    let actual: string;
    try {
      for await (const chunk of source) {
        await digest.ready();
        digest.update(chunk);
        if (held) yield held;
        held = chunk;
      }
      actual = await digest.digest();
    } finally {
      digest.dispose();
    }
    if (actual !== hash) {
      const err = new BlobIntegrityError(hash, actual);
      onCorrupted(err);
      throw err;
    }
    if (held) yield held;
  }
  return Readable.from(checked(), { objectMode: false });
}
