import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  paginateListObjectsV2,
  ListMultipartUploadsCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { assertBlobName, BLOB_NAME, type BlobListing } from './blob-store';
import { s3Step } from './s3-storage-error.util';

/**
 * The S3 store's layout as the orphan sweep needs it (S3BlobStore): committed blobs at `<prefix>blobs/<sha256>`,
 * staged objects at `<prefix>staging/…`, and the incomplete multipart uploads of a process killed mid-upload, which
 * hold storage (and cost) without showing in an object listing.
 */
export class S3BlobListing implements BlobListing {
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly blobPrefix: string,
    private readonly stagingPrefix: string,
  ) {}

  async *list(): AsyncGenerator<{ hash: string; modifiedAt: Date }> {
    for await (const page of paginateListObjectsV2(
      { client: this.client },
      { Bucket: this.bucket, Prefix: this.blobPrefix },
    )) {
      for (const object of page.Contents ?? []) {
        const hash = object.Key?.slice(this.blobPrefix.length) ?? '';
        if (BLOB_NAME.test(hash) && object.LastModified) yield { hash, modifiedAt: object.LastModified };
      }
    }
  }

  async remove(hash: string): Promise<void> {
    assertBlobName(hash);
    await s3Step('delete a blob', () =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: `${this.blobPrefix}${hash}` })),
    );
  }

  async removeStaleStaging(before: Date): Promise<number> {
    let removed = 0;
    for await (const page of paginateListObjectsV2(
      { client: this.client },
      { Bucket: this.bucket, Prefix: this.stagingPrefix },
    )) {
      for (const object of page.Contents ?? []) {
        if (!object.Key || !object.LastModified || object.LastModified >= before) continue;
        await s3Step('drop a staged blob', () =>
          this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: object.Key })),
        );
        removed += 1;
      }
    }
    return removed + (await this.abortStaleUploads(before));
  }

  /** Incomplete multipart uploads into the staging prefix that began before `before`: aborted, counted. */
  private async abortStaleUploads(before: Date): Promise<number> {
    let aborted = 0;
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    for (;;) {
      const page = await s3Step('list incomplete uploads', () =>
        this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: this.stagingPrefix,
            KeyMarker,
            UploadIdMarker,
          }),
        ),
      );
      for (const upload of page.Uploads ?? []) {
        if (!upload.Key || !upload.UploadId || !upload.Initiated || upload.Initiated >= before) continue;
        const { Key, UploadId } = upload;
        await s3Step('abort an incomplete upload', () =>
          this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId })),
        );
        aborted += 1;
      }
      if (!page.IsTruncated) return aborted;
      KeyMarker = page.NextKeyMarker;
      UploadIdMarker = page.NextUploadIdMarker;
    }
  }
}
