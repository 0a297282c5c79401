import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import type { HubConfig } from '../config/config.schema';
import type { BlobStore } from './blob-store';
import type { BlobIntegrityError } from './blob-store.exception';
import { FilesystemBlobStore } from './filesystem-blob-store';
import { S3BlobStore, type S3Encryption } from './s3-blob-store';

/** How long the hub waits for a TCP (and TLS) connection to the object store (ms) before calling it unavailable. */
const S3_CONNECT_TIMEOUT_MS = 5_000;
/** Sockets to the object store: every upload and download in flight holds one (the SDK's default is 50). */
const S3_MAX_SOCKETS = 256;

type BlobStoreSettings = Pick<
  HubConfig,
  | 'dataDir'
  | 'blobStore'
  | 's3Bucket'
  | 's3Region'
  | 's3Endpoint'
  | 's3ForcePathStyle'
  | 's3Prefix'
  | 's3PartSizeMib'
  | 's3ServerSideEncryption'
  | 's3KmsKeyId'
>;

/**
 * The S3 client of the configured store. Credentials are the AWS SDK's default chain (environment, profile, web
 * identity, instance role), never a hub setting, so they rotate the way the platform rotates them. Requests carry
 * the SDK's default checksums; a store that refuses them is told apart with AWS_REQUEST_CHECKSUM_CALCULATION.
 */
export function s3ClientFor(settings: BlobStoreSettings): S3Client {
  return new S3Client({
    ...(settings.s3Region ? { region: settings.s3Region } : {}),
    ...(settings.s3Endpoint ? { endpoint: settings.s3Endpoint } : {}),
    forcePathStyle: settings.s3ForcePathStyle,
    requestHandler: {
      connectionTimeout: S3_CONNECT_TIMEOUT_MS,
      httpAgent: { keepAlive: true, maxSockets: S3_MAX_SOCKETS },
      httpsAgent: { keepAlive: true, maxSockets: S3_MAX_SOCKETS },
    },
  });
}

function encryptionOf(settings: BlobStoreSettings): S3Encryption | undefined {
  if (settings.s3ServerSideEncryption === 'AES256') return { mode: 'AES256' };
  if (settings.s3ServerSideEncryption === 'aws:kms') {
    return { mode: 'aws:kms', ...(settings.s3KmsKeyId ? { kmsKeyId: settings.s3KmsKeyId } : {}) };
  }
  return undefined;
}

/** The blob store TESSERA_BLOB_STORE selects (docs/configuration.md). */
export function blobStoreFor(
  settings: BlobStoreSettings,
  onIntegrityFailure: (err: BlobIntegrityError) => void,
): BlobStore {
  switch (settings.blobStore) {
    case 'filesystem':
      return new FilesystemBlobStore(join(settings.dataDir, 'blobs'), { onIntegrityFailure });
    case 's3': {
      // loadHubConfig refuses s3 without a bucket; this guards callers that build settings by hand.
      if (!settings.s3Bucket) throw new Error('TESSERA_S3_BUCKET is required with TESSERA_BLOB_STORE=s3');
      const encryption = encryptionOf(settings);
      return new S3BlobStore(s3ClientFor(settings), {
        bucket: settings.s3Bucket,
        prefix: settings.s3Prefix,
        partSizeBytes: settings.s3PartSizeMib * 1024 * 1024,
        onIntegrityFailure,
        ...(encryption ? { encryption } : {}),
      });
    }
  }
}
