import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TcpProxy } from '../testing/tcp-proxy.test-util';
import { describeBlobStoreContract, payload, type BlobStoreUnderTest } from './blob-store-contract.test-util';
import { BlobStorageUnavailableError } from './blob-store.exception';
import { S3_MIN_PART_BYTES, S3BlobStore, type S3BlobStoreOptions } from './s3-blob-store';
import { s3SuiteAvailability, startS3TestServer, type S3TestServer } from './s3-test-server.test-util';

const availability = s3SuiteAvailability();
if (!availability.run) console.warn(`skipping the S3 blob store suite: ${availability.reason}`);

const PREFIX = 'hub-a/';
let server: S3TestServer;

async function keys(client: S3Client, bucket: string, prefix = ''): Promise<string[]> {
  const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key!);
}

async function incompleteUploads(client: S3Client, bucket: string): Promise<string[]> {
  const out = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return (out.Uploads ?? []).map((u) => u.Key!);
}

/** An S3 store on a fresh bucket, reached through a TCP relay that can cut it off as an outage would. */
async function s3UnderTest(
  options: Partial<S3BlobStoreOptions> = {},
): Promise<BlobStoreUnderTest & { bucket: string; admin: S3Client }> {
  const bucket = await server.createBucket();
  const relay = await TcpProxy.start({ host: '127.0.0.1', port: server.port });
  const client = server.client({ endpoint: `http://127.0.0.1:${relay.port}` });
  const admin = server.client();
  const store = new S3BlobStore(client, { bucket, prefix: PREFIX, partSizeBytes: S3_MIN_PART_BYTES, ...options });
  return {
    bucket,
    admin,
    store,
    async tamper(hash, mutate) {
      const Key = store.blobKey(hash);
      const res = await admin.send(new GetObjectCommand({ Bucket: bucket, Key }));
      const bytes = Buffer.from(await res.Body!.transformToByteArray());
      await admin.send(new PutObjectCommand({ Bucket: bucket, Key, Body: mutate(bytes) }));
    },
    async lose(hash) {
      await admin.send(new DeleteObjectCommand({ Bucket: bucket, Key: store.blobKey(hash) }));
    },
    async cutOff() {
      await relay.cut();
      return () => relay.restore();
    },
    async staged() {
      return [...(await keys(admin, bucket, `${PREFIX}staging/`)), ...(await incompleteUploads(admin, bucket))];
    },
    async dispose() {
      client.destroy();
      admin.destroy();
      await relay.close();
    },
  };
}

describe.skipIf(!availability.run)('S3BlobStore against a real S3-protocol server (Swift s3api)', () => {
  beforeAll(async () => {
    server = await startS3TestServer();
  }, 240_000);
  afterAll(async () => {
    await server?.stop();
  });

  describeBlobStoreContract('S3BlobStore', ({ onIntegrityFailure }) => s3UnderTest({ onIntegrityFailure }));

  describe('S3-specific behaviour', () => {
    it('keeps committed blobs at <prefix>blobs/<sha256> and nothing else once idle', async () => {
      const t = await s3UnderTest();
      try {
        const hash = await t.store.put(payload(1000));
        expect(await keys(t.admin, t.bucket)).toEqual([`${PREFIX}blobs/${hash}`]);
      } finally {
        await t.dispose();
      }
    });

    it('streams a blob larger than a part as a multipart upload, and the sweep aborts one a killed process left', async () => {
      const t = await s3UnderTest();
      try {
        const staged = await t.store.stage();
        // Two parts' worth: the first part is on the server while the upload is still open.
        const chunk = payload(1024 * 1024, 3);
        for (let i = 0; i < 6; i += 1) await staged.write(chunk);
        await new Promise((r) => setTimeout(r, 500));
        expect(await incompleteUploads(t.admin, t.bucket)).toHaveLength(1);
        const removed = await t.store.listing().removeStaleStaging(new Date(Date.now() + 60_000));
        expect(removed).toBe(2); // the staged object and the incomplete upload
        expect(await incompleteUploads(t.admin, t.bucket)).toEqual([]);
        await staged.abort();
        expect(await t.staged()).toEqual([]);
      } finally {
        await t.dispose();
      }
    });

    it('commits a multipart upload whose bytes hash to the name', async () => {
      const t = await s3UnderTest();
      try {
        const staged = await t.store.stage();
        const digest = createHash('sha256');
        for (let i = 0; i < 12; i += 1) {
          const chunk = payload(1024 * 1024, i);
          digest.update(chunk);
          await staged.write(chunk);
        }
        const { hash, size } = await staged.commit();
        expect(hash).toBe(digest.digest('hex'));
        expect(size).toBe(12 * 1024 * 1024);
        await t.store.verify(hash);
        expect(await t.staged()).toEqual([]);
      } finally {
        await t.dispose();
      }
    });

    it('says "unavailable" with the S3 code when the store refuses the hub’s credentials', async () => {
      const bucket = await server.createBucket();
      const good = new S3BlobStore(server.client(), { bucket, prefix: '', partSizeBytes: S3_MIN_PART_BYTES });
      const hash = await good.put(payload(100));
      const client = server.client({ secretAccessKey: 'not-the-key' });
      const store = new S3BlobStore(client, { bucket, prefix: '', partSizeBytes: S3_MIN_PART_BYTES });
      for (const attempt of [() => store.stage(), () => store.probeWritable(), () => store.get(hash)]) {
        const err = await attempt().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(BlobStorageUnavailableError);
        expect((err as BlobStorageUnavailableError).code).toBe('SignatureDoesNotMatch');
      }
      client.destroy();
    });

    it('says "unavailable" (NoSuchBucket) when the bucket is not there', async () => {
      const store = new S3BlobStore(server.client(), {
        bucket: 'tessera-no-such-bucket',
        prefix: '',
        partSizeBytes: S3_MIN_PART_BYTES,
      });
      const err = await store.probeWritable().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BlobStorageUnavailableError);
      expect((err as BlobStorageUnavailableError).code).toBe('NoSuchBucket');
    });

    it('answers reads during an outage with "unavailable", not "missing"', async () => {
      const t = await s3UnderTest();
      try {
        const hash = await t.store.put(payload(100));
        const restore = await t.cutOff();
        try {
          for (const read of [() => t.store.has(hash), () => t.store.get(hash), () => t.store.verify(hash)]) {
            const err = await read().catch((e: unknown) => e);
            expect(err).toBeInstanceOf(BlobStorageUnavailableError);
          }
        } finally {
          await restore();
        }
        expect(await t.store.has(hash)).toBe(true);
      } finally {
        await t.dispose();
      }
    });
  });
});
