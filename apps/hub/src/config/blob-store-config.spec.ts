import { describe, expect, it } from 'vitest';
import { blobStoreFor } from '../blobs/blob-store-selection.util';
import { FilesystemBlobStore } from '../blobs/filesystem-blob-store';
import { S3BlobStore } from '../blobs/s3-blob-store';
import { ConfigError, loadHubConfig } from './hub-config';

function problemsOf(env: Record<string, string>): { variable: string; message: string }[] {
  try {
    loadHubConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const S3 = { TESSERA_BLOB_STORE: 's3', TESSERA_S3_BUCKET: 'tessera-blobs', TESSERA_S3_REGION: 'eu-central-1' };

describe('blob store configuration', () => {
  it('keeps blobs on the file system by default', async () => {
    const config = loadHubConfig({});
    expect(config.blobStore).toBe('filesystem');
    expect(config.s3Prefix).toBe('');
    expect(config.s3PartSizeMib).toBe(8);
    expect(await blobStoreFor(config, () => undefined)).toBeInstanceOf(FilesystemBlobStore);
  });

  it('selects the S3 store with a bucket and a region', async () => {
    const config = loadHubConfig({
      ...S3,
      TESSERA_S3_ENDPOINT: 'https://objects.hospital.example',
      TESSERA_S3_FORCE_PATH_STYLE: 'true',
      TESSERA_S3_PREFIX: 'tessera/hub',
    });
    expect(config).toMatchObject({
      blobStore: 's3',
      s3Bucket: 'tessera-blobs',
      s3Region: 'eu-central-1',
      s3ForcePathStyle: true,
      s3Prefix: 'tessera/hub/',
    });
    const store = await blobStoreFor(config, () => undefined);
    expect(store).toBeInstanceOf(S3BlobStore);
    expect((store as S3BlobStore).blobKey('ab'.repeat(32))).toBe(`tessera/hub/blobs/${'ab'.repeat(32)}`);
  });

  it('names the bucket and the region when s3 lacks them', () => {
    expect(problemsOf({ TESSERA_BLOB_STORE: 's3' }).map((p) => p.variable)).toEqual([
      'TESSERA_S3_BUCKET',
      'TESSERA_S3_REGION',
    ]);
  });

  it('takes the region from AWS_REGION or AWS_DEFAULT_REGION', () => {
    const { TESSERA_S3_REGION: _, ...noRegion } = S3;
    for (const env of [{ AWS_REGION: 'eu-west-3' }, { AWS_DEFAULT_REGION: 'eu-west-3' }]) {
      expect(loadHubConfig({ ...noRegion, ...env }).blobStore).toBe('s3');
    }
  });

  it('refuses S3 settings the hub would ignore because the store is not s3', () => {
    expect(problemsOf({ TESSERA_S3_BUCKET: 'tessera-blobs' })).toEqual([
      {
        variable: 'TESSERA_S3_BUCKET',
        message: 'is set but TESSERA_BLOB_STORE is not s3: the hub would ignore it',
      },
    ]);
  });

  it('explains each malformed S3 setting', () => {
    const problems = problemsOf({
      ...S3,
      TESSERA_BLOB_STORE: 'minio',
      TESSERA_S3_BUCKET: 'Bad_Bucket',
      TESSERA_S3_PART_SIZE_MIB: '4',
      TESSERA_S3_PREFIX: '/abs//path',
      TESSERA_S3_ENDPOINT: 'ftp://objects.example',
      TESSERA_S3_SSE: 'rot13',
    });
    const by = Object.fromEntries(problems.map((p) => [p.variable, p.message]));
    expect(by.TESSERA_BLOB_STORE).toContain('minio');
    expect(by.TESSERA_S3_BUCKET).toContain('bucket name');
    expect(by.TESSERA_S3_PART_SIZE_MIB).toContain('at least 5');
    expect(by.TESSERA_S3_PREFIX).toContain('must not start with "/"');
    expect(by.TESSERA_S3_ENDPOINT).toContain('http');
    expect(by.TESSERA_S3_SSE).toContain('rot13');
  });

  it('asks for aws:kms when a KMS key is named', () => {
    expect(problemsOf({ ...S3, TESSERA_S3_SSE: 'AES256', TESSERA_S3_SSE_KMS_KEY_ID: 'alias/tessera' })).toEqual([
      { variable: 'TESSERA_S3_SSE_KMS_KEY_ID', message: 'needs TESSERA_S3_SSE=aws:kms' },
    ]);
    expect(
      loadHubConfig({ ...S3, TESSERA_S3_SSE: 'aws:kms', TESSERA_S3_SSE_KMS_KEY_ID: 'alias/tessera' }).s3KmsKeyId,
    ).toBe('alias/tessera');
  });
});
