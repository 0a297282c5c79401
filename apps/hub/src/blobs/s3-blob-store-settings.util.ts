import { S3Client } from '@aws-sdk/client-s3';
import type { HubConfig } from '../config/config.schema';
import type { BlobIntegrityError } from './blob-store.exception';
import { S3BlobStore, type S3Encryption } from './s3-blob-store';

/** How long the hub waits for a TCP (and TLS) connection to the object store (ms) before calling it unavailable. */
const S3_CONNECT_TIMEOUT_MS = 5_000;
/** Sockets to the object store: every upload and download in flight holds one (the SDK's default is 50). */
const S3_MAX_SOCKETS = 256;

export type S3Settings = Pick<
  HubConfig,
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
export function s3ClientFor(settings: S3Settings): S3Client {
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

function encryptionOf(settings: S3Settings): S3Encryption | undefined {
  if (settings.s3ServerSideEncryption === 'AES256') return { mode: 'AES256' };
  if (settings.s3ServerSideEncryption === 'aws:kms') {
    return { mode: 'aws:kms', ...(settings.s3KmsKeyId ? { kmsKeyId: settings.s3KmsKeyId } : {}) };
  }
  return undefined;
}

/** The S3 store the TESSERA_S3_* settings describe. */
export function s3BlobStoreFor(
  settings: S3Settings,
  onIntegrityFailure: (err: BlobIntegrityError) => void,
): S3BlobStore {
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
