import { join } from 'node:path';
import type { HubConfig } from '../config/config.schema';
import type { BlobStore } from './blob-store';
import type { BlobIntegrityError } from './blob-store.exception';
import { FilesystemBlobStore } from './filesystem-blob-store';
import type { S3Settings } from './s3-blob-store-settings.util';

type BlobStoreSettings = Pick<HubConfig, 'dataDir' | 'blobStore'> & S3Settings;

/**
 * The blob store TESSERA_BLOB_STORE selects (docs/configuration.md). The AWS SDK is loaded only for the S3 store:
 * it adds most of a second to every start of a hub that keeps its blobs on disk.
 */
export async function blobStoreFor(
  settings: BlobStoreSettings,
  onIntegrityFailure: (err: BlobIntegrityError) => void,
): Promise<BlobStore> {
  switch (settings.blobStore) {
    case 'filesystem':
      return new FilesystemBlobStore(join(settings.dataDir, 'blobs'), { onIntegrityFailure });
    case 's3': {
      const { s3BlobStoreFor } = await import('./s3-blob-store-settings.util.js');
      return s3BlobStoreFor(settings, onIntegrityFailure);
    }
  }
}
