import { Global, Logger, Module, type DynamicModule } from '@nestjs/common';
import { AuditTrail } from './audit/audit-trail';
import { integrityFailureReporter } from './audit/blob-integrity.util';
import { BlobStore } from './blobs/blob-store';
import { blobStoreFor } from './blobs/blob-store-selection.util';
import type { HubConfig } from './config/config.schema';
import { HUB_CONFIG } from './config/hub-config';
import { PkiKeyPrefetch } from './pki/pki-key-prefetch';
import { SESSION_KEY } from './sessions/session-key';

export interface HubBootValues {
  config: HubConfig;
  sessionKey: string;
  /** Keys a first boot started making while the database started (startHub); made on demand otherwise. */
  pkiKeys?: PkiKeyPrefetch;
}

/**
 * What one boot hands every feature module (global, composition root): the validated configuration, the session
 * key, the PKI keys started early, and the blob store the configuration selects (its integrity failures recorded in
 * the audit trail, which is why it is wired here and not in blobs/, below audit/).
 */
@Global()
@Module({})
export class HubBootModule {
  static forRoot({ config, sessionKey, pkiKeys }: HubBootValues): DynamicModule {
    return {
      module: HubBootModule,
      global: true,
      providers: [
        { provide: HUB_CONFIG, useValue: config },
        { provide: SESSION_KEY, useValue: sessionKey },
        { provide: PkiKeyPrefetch, useValue: pkiKeys ?? new PkiKeyPrefetch() },
        {
          provide: BlobStore,
          inject: [AuditTrail],
          // The filesystem or the S3 store, as TESSERA_BLOB_STORE says.
          useFactory: (audit: AuditTrail) =>
            blobStoreFor(config, integrityFailureReporter(audit, new Logger('BlobStore'))),
        },
      ],
      exports: [HUB_CONFIG, SESSION_KEY, PkiKeyPrefetch, BlobStore],
    };
  }
}
