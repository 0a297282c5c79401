import {
  AbortMultipartUploadCommand,
  ChecksumAlgorithm,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
  type ServerSideEncryption,
} from '@aws-sdk/client-s3';

export interface S3PartWriterOptions {
  bucket: string;
  key: string;
  partSizeBytes: number;
  sse: { ServerSideEncryption?: ServerSideEncryption; SSEKMSKeyId?: string };
}

/**
 * Streams bytes to one S3 object in exactly two part buffers, whatever the object's size: one filling while the
 * other is on the wire. A body under one part is sent as a single PutObject at the end; anything larger as a
 * multipart upload (AWS S3 API: CreateMultipartUpload, UploadPart, CompleteMultipartUpload), parts sent one at a
 * time in order.
 *
 * Written for the staged blob instead of `@aws-sdk/lib-storage`'s Upload, whose stream chunker concatenates the
 * part and keeps the concatenation alive through the remainder it slices from it: about three parts live per
 * upload, against two here, and none allocated after the first two (docs/reliability.md, "Memory per upload").
 */
export class S3PartWriter {
  private filling: Buffer | null = null;
  private fill = 0;
  private uploadId: Promise<string> | null = null;
  private readonly parts: CompletedPart[] = [];
  /** The part on the wire, settled; resolves to the buffer it sent, free to fill again. */
  private inFlight: Promise<Buffer> | null = null;
  /** The first part's failure; the SDK rejects with Errors, anything else is wrapped as the cause of one. */
  private failure: Error | null = null;
  private state: 'open' | 'ended' | 'aborted' = 'open';
  /** The object exists: its PutObject or CompleteMultipartUpload succeeded. */
  private completed = false;

  constructor(
    private readonly client: S3Client,
    private readonly options: S3PartWriterOptions,
  ) {}

  /** Copies the chunk into the part buffer; waits only when a full part must go while the previous one is in flight. */
  async write(chunk: Uint8Array): Promise<void> {
    if (this.state !== 'open') throw new Error(`the S3 upload was ${this.state}; it takes no more bytes`);
    this.throwIfFailed();
    const size = this.options.partSizeBytes;
    let offset = 0;
    while (offset < chunk.length) {
      this.filling ??= Buffer.allocUnsafeSlow(size); // at most twice per upload: the part on the wire is given back
      const take = Math.min(size - this.fill, chunk.length - offset);
      this.filling.set(chunk.subarray(offset, offset + take), this.fill);
      this.fill += take;
      offset += take;
      if (this.fill === size) await this.sendFilled();
    }
  }

  /** Sends what is left and completes the object. */
  async end(): Promise<void> {
    if (this.state !== 'open') throw new Error(`the S3 upload was ${this.state}`);
    this.state = 'ended';
    if (!this.uploadId) {
      // Under one part: one PutObject of the bytes (an empty body included).
      const body = this.filling ? this.filling.subarray(0, this.fill) : new Uint8Array(0);
      await this.client.send(
        new PutObjectCommand({ Bucket: this.options.bucket, Key: this.options.key, Body: body, ...this.options.sse }),
      );
      this.completed = true;
      this.release();
      return;
    }
    if (this.fill > 0) await this.sendFilled(); // the last part may be short
    await this.settle();
    this.throwIfFailed();
    await this.client.send(
      new CompleteMultipartUploadCommand({
        Bucket: this.options.bucket,
        Key: this.options.key,
        UploadId: await this.uploadId,
        MultipartUpload: { Parts: this.parts },
      }),
    );
    this.completed = true;
    this.release();
  }

  /** Stops the upload and discards the parts sent (no-op once aborted; the object itself once complete stays). */
  async abort(): Promise<void> {
    if (this.state === 'aborted') return;
    this.state = 'aborted';
    await this.settle();
    const id = this.uploadId ? await this.uploadId.catch(() => null) : null;
    this.release();
    if (!this.completed && id) {
      await this.client.send(
        new AbortMultipartUploadCommand({ Bucket: this.options.bucket, Key: this.options.key, UploadId: id }),
      );
    }
  }

  private async sendFilled(): Promise<void> {
    const full = this.filling!;
    const length = this.fill;
    const spare = await this.settle(); // one part on the wire at a time
    this.throwIfFailed();
    this.uploadId ??= this.createUpload();
    const partNumber = this.parts.length + 1;
    this.parts.push({ PartNumber: partNumber }); // filled in when S3 answers; keeps the order
    this.inFlight = this.uploadPart(partNumber, full.subarray(0, length)).then(
      () => full,
      (err: unknown) => {
        this.failure ??= err instanceof Error ? err : new Error('S3 part upload failed', { cause: err });
        return full;
      },
    );
    this.filling = spare;
    this.fill = 0;
  }

  /** Waits for the part on the wire; returns its buffer, free again (null when none was in flight). */
  private async settle(): Promise<Buffer | null> {
    if (!this.inFlight) return null;
    const freed = await this.inFlight;
    this.inFlight = null;
    return freed;
  }

  private async createUpload(): Promise<string> {
    // As the SDK's own uploader does: when the client sends checksums by default, the upload declares CRC32 and the
    // completion lists each part's.
    const checksums = (await this.client.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED';
    const out = await this.client.send(
      new CreateMultipartUploadCommand({
        Bucket: this.options.bucket,
        Key: this.options.key,
        ...this.options.sse,
        ...(checksums ? { ChecksumAlgorithm: ChecksumAlgorithm.CRC32 } : {}),
      }),
    );
    if (!out.UploadId) throw new Error('the object store started a multipart upload without an UploadId');
    return out.UploadId;
  }

  private async uploadPart(partNumber: number, body: Buffer): Promise<void> {
    const out = await this.client.send(
      new UploadPartCommand({
        Bucket: this.options.bucket,
        Key: this.options.key,
        UploadId: await this.uploadId!,
        PartNumber: partNumber,
        Body: body,
      }),
    );
    if (!out.ETag) throw new Error(`the object store answered part ${partNumber} without an ETag`);
    this.parts[partNumber - 1] = {
      PartNumber: partNumber,
      ETag: out.ETag,
      ...(out.ChecksumCRC32 ? { ChecksumCRC32: out.ChecksumCRC32 } : {}),
    };
  }

  private throwIfFailed(): void {
    if (this.failure !== null) throw this.failure;
  }

  private release(): void {
    this.filling = null;
    this.fill = 0;
  }
}
