import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
  type ServerSideEncryption,
} from '@aws-sdk/client-s3';
import {
  assertBlobName,
  assertRange,
  BlobStore,
  verifyingStream,
  type BlobListing,
  type StagedBlob,
} from './blob-store';
import { BlobIntegrityError, BlobRangeError } from './blob-store.exception';
import { OffThreadSha256, sha256Off } from './off-thread-sha256';
import { S3BlobListing } from './s3-blob-listing';
import { S3PartWriter } from './s3-part-writer';
import { asS3StorageError, isMissingObject, s3ErrorCode, s3Step } from './s3-storage-error.util';

/** The smallest part S3 accepts in a multipart upload, except the last (AWS S3 API, UploadPart). */
export const S3_MIN_PART_BYTES = 5 * 1024 * 1024;
/** A probe must answer within this (ms); past it the store counts as unavailable for readiness. */
const PROBE_TIMEOUT_MS = 10_000;

/** Encryption at rest the store asks of S3 for every object it writes; unset leaves it to the bucket's default. */
export type S3Encryption = { mode: 'AES256' } | { mode: 'aws:kms'; kmsKeyId?: string };

export interface S3BlobStoreOptions {
  bucket: string;
  /** Key prefix of everything the hub writes: '' or ending in '/'. */
  prefix: string;
  /**
   * Size of each multipart-upload part (bytes, at least 5 MiB). An upload in flight holds two parts in memory,
   * whatever the blob's size: one filling while the other is on the wire, the parts sent one at a time.
   */
  partSizeBytes: number;
  encryption?: S3Encryption;
  /** Told of every corrupted blob found on a read (for the audit trail and the log), before the read fails. */
  onIntegrityFailure?: (err: BlobIntegrityError) => void;
}

/**
 * Blobs as objects `<prefix>blobs/<sha256>` in an S3-compatible bucket, for hubs that share storage (several
 * replicas) or run where no persistent volume is at hand.
 *
 * A blob's name is known only once its last byte is read, and S3 cannot rename: bytes are streamed (multipart, two
 * parts in memory) to `<prefix>staging/<random>` while hashed, then committed by a server-side copy to their name
 * and the staged object deleted. A name that already exists is not copied again (same name, same bytes). Every read
 * is checked against the name exactly as the filesystem store's. Staged objects and incomplete multipart uploads
 * a killed process leaves are removed by the orphan sweep (and by the bucket's lifecycle rule, docs/operator-guide.md).
 */
export class S3BlobStore extends BlobStore {
  private readonly onIntegrityFailure: (err: BlobIntegrityError) => void;
  private readonly sse: { ServerSideEncryption?: ServerSideEncryption; SSEKMSKeyId?: string };

  constructor(
    private readonly client: S3Client,
    private readonly options: S3BlobStoreOptions,
  ) {
    super();
    if (options.partSizeBytes < S3_MIN_PART_BYTES) {
      throw new Error(`S3 multipart parts must be at least ${S3_MIN_PART_BYTES} bytes`);
    }
    if (options.prefix !== '' && !options.prefix.endsWith('/')) throw new Error('the S3 key prefix must end in "/"');
    this.onIntegrityFailure = options.onIntegrityFailure ?? (() => undefined);
    const enc = options.encryption;
    this.sse = !enc
      ? {}
      : enc.mode === 'AES256'
        ? { ServerSideEncryption: 'AES256' }
        : { ServerSideEncryption: 'aws:kms', ...(enc.kmsKeyId ? { SSEKMSKeyId: enc.kmsKeyId } : {}) };
  }

  async put(bytes: Uint8Array): Promise<string> {
    const staged = await this.stage();
    try {
      await staged.write(bytes);
    } catch (err) {
      await staged.abort();
      throw err;
    }
    return (await staged.commit()).hash;
  }

  async stage(): Promise<StagedBlob> {
    const Key = this.stagingKey(`${Date.now()}-${randomBytes(8).toString('hex')}`);
    const Bucket = this.options.bucket;
    // An empty object first: the store's refusal (credentials, permissions, outage) reaches the client before it
    // sends its body, as the filesystem store's does; the sweep also sees this upload's age from it.
    await s3Step('create a staged blob', () =>
      this.client.send(new PutObjectCommand({ Bucket, Key, Body: new Uint8Array(0), ...this.sse })),
    );
    // Two part buffers per upload, whatever the blob's size (s3-part-writer.ts).
    const writer = new S3PartWriter(this.client, {
      bucket: Bucket,
      key: Key,
      partSizeBytes: this.options.partSizeBytes,
      sse: this.sse,
    });
    let failure: Error | undefined;
    const writeStep = async (step: () => Promise<void>) => {
      if (failure) throw failure;
      try {
        await step();
      } catch (err) {
        failure = asS3StorageError('write a staged blob', err);
        throw failure;
      }
    };
    // The one SHA-256 pass over the bytes (on a worker thread past 256 KiB): the blob's name.
    const hash = new OffThreadSha256();
    let size = 0;
    let done = false;
    /** Set by finish: the staging object is complete and its hash known; only the copy to its name is left. */
    let finished: Promise<string> | null = null;
    const finish = (): Promise<string> => {
      if (finished) return finished;
      const digest = hash.digest();
      finished = Promise.all([digest, writeStep(() => writer.end())]).then(([final]) => final);
      return finished;
    };
    const dropStaged = () =>
      s3Step('drop a staged blob', () => this.client.send(new DeleteObjectCommand({ Bucket, Key })));
    return {
      write: async (chunk) => {
        if (failure) throw failure;
        if (finished) throw new Error('a staged blob takes no more bytes once finished');
        await hash.ready(); // room in the hashing pool's bound before posting more
        hash.update(chunk);
        size += chunk.length;
        await writeStep(() => writer.write(chunk)); // waits only while the previous part is still on the wire
      },
      hashSoFar: () => finished ?? hash.digestSoFar(),
      finish: async () => {
        await finish();
      },
      commit: async () => {
        done = true;
        try {
          const final = await finish();
          await this.commitStaged(Key, final);
          return { hash: final, size };
        } finally {
          await dropStaged().catch(() => undefined); // a leftover is the sweep's; the commit's outcome is what counts
        }
      },
      abort: async () => {
        if (done) return;
        done = true;
        hash.dispose();
        await writer.abort().catch(() => undefined); // an upload left behind is the sweep's
        await dropStaged();
      },
    };
  }

  async get(hash: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of this.objectBytes(hash)) chunks.push(Buffer.from(chunk));
    const bytes = Buffer.concat(chunks);
    const actual = await sha256Off(bytes);
    if (actual !== hash) {
      const err = new BlobIntegrityError(hash, actual);
      this.onIntegrityFailure(err);
      throw err;
    }
    return bytes;
  }

  openRead(hash: string): Readable {
    assertBlobName(hash);
    return verifyingStream(hash, this.objectBytes(hash), this.onIntegrityFailure);
  }

  /** One ranged GetObject (HTTP Range, RFC 9110 §14.2); an empty range only checks that the blob exists. */
  async readRange(hash: string, start: number, end: number): Promise<Buffer> {
    const Key = this.blobKey(hash);
    assertRange(hash, start, end);
    if (end === start) {
      await this.size(hash);
      return Buffer.alloc(0);
    }
    let bytes: Buffer;
    try {
      const res = await this.client.send(
        new GetObjectCommand({ Bucket: this.options.bucket, Key, Range: `bytes=${start}-${end - 1}` }),
      );
      if (!res.Body) throw new Error(`the object store sent no body for part of blob ${hash}`);
      bytes = Buffer.from(await res.Body.transformToByteArray());
    } catch (err) {
      // 416: the range starts past the object's end.
      if (s3ErrorCode(err) === 'InvalidRange') throw new BlobRangeError(hash, start, end, await this.size(hash));
      throw asS3StorageError('read part of a blob', err, hash);
    }
    if (bytes.length !== end - start) {
      // A range that ends past the object is answered with the bytes there are.
      const size = await this.size(hash);
      if (size < end) throw new BlobRangeError(hash, start, end, size);
      throw new Error(`the object store answered ${bytes.length} bytes for bytes [${start}, ${end}) of blob ${hash}`);
    }
    return bytes;
  }

  async has(hash: string): Promise<boolean> {
    try {
      await this.head(hash);
      return true;
    } catch (err) {
      if (isMissingObject(err)) return false;
      throw asS3StorageError('look up a blob', err);
    }
  }

  async size(hash: string): Promise<number> {
    const head = await s3Step('look up a blob', () => this.head(hash), hash);
    return head.ContentLength ?? 0;
  }

  async probeWritable(): Promise<void> {
    const Key = this.stagingKey(`health-${randomBytes(8).toString('hex')}`);
    const Bucket = this.options.bucket;
    await s3Step('write a probe object', async () => {
      const abortSignal = AbortSignal.timeout(PROBE_TIMEOUT_MS);
      await this.client.send(new PutObjectCommand({ Bucket, Key, Body: randomBytes(64), ...this.sse }), {
        abortSignal,
      });
      await this.client.send(new DeleteObjectCommand({ Bucket, Key }), { abortSignal });
    });
  }

  listing(): BlobListing {
    return new S3BlobListing(this.client, this.options.bucket, this.blobKeyPrefix, this.stagingKeyPrefix);
  }

  /** The object key of a committed blob. */
  blobKey(hash: string): string {
    assertBlobName(hash);
    return `${this.blobKeyPrefix}${hash}`;
  }

  private get blobKeyPrefix(): string {
    return `${this.options.prefix}blobs/`;
  }

  private get stagingKeyPrefix(): string {
    return `${this.options.prefix}staging/`;
  }

  private stagingKey(name: string): string {
    return `${this.stagingKeyPrefix}${name}`;
  }

  private head(hash: string) {
    return this.client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: this.blobKey(hash) }));
  }

  /** Copies the staged object to its name unless a blob of that name (so of those bytes) is there already. */
  private async commitStaged(stagingKey: string, hash: string): Promise<void> {
    if (await this.has(hash)) return;
    const Bucket = this.options.bucket;
    await s3Step('commit a blob', () =>
      this.client.send(
        new CopyObjectCommand({
          Bucket,
          Key: this.blobKey(hash),
          CopySource: `${Bucket}/${stagingKey.split('/').map(encodeURIComponent).join('/')}`,
          ...this.sse,
        }),
      ),
    );
  }

  /** The object's bytes as they arrive (one chunk in memory); a missing object fails with BlobNotFoundError. */
  private async *objectBytes(hash: string): AsyncGenerator<Uint8Array> {
    const Key = this.blobKey(hash);
    const res = await s3Step(
      'read a blob',
      () => this.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key })),
      hash,
    );
    if (!res.Body) throw new Error(`the object store sent no body for blob ${hash}`);
    try {
      for await (const chunk of res.Body as Readable) yield chunk as Uint8Array;
    } catch (err) {
      throw asS3StorageError('read a blob', err);
    }
  }
}
