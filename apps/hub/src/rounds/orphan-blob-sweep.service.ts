import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { InjectPinoLogger, PinoLogger } from 'nestjs-pino';
import { HUB_CONFIG } from '../config/hub-config';
import type { HubConfig } from '../config/config.schema';
import { BlobStore, type BlobListing } from '../blobs/blob-store';
import { RoundViewsRepository } from './round-views.repository';

/** The reference query lives with the other SQL of rounds/ (the fault suite reads it too). */
export { REFERENCED_BLOBS } from './round-views.repository';

/** What one sweep found and removed. */
export interface OrphanSweepResult {
  /** Committed blobs examined. */
  examined: number;
  /** Unreferenced blobs older than the grace period, deleted. */
  removed: number;
  /** Unreferenced blobs younger than the grace period, kept (an upload or a round close may be committing them). */
  keptYoung: number;
  /** Staged files of uploads that never completed, older than the grace period, deleted. */
  removedStaging: number;
}

/**
 * Boot-time sweep of orphan blobs (docs/reliability.md). Bytes are committed to the blob store before the row that
 * names them commits (the row must never name a missing blob); a crash or a rolled-back transaction in between leaves
 * bytes nothing references, and an earlier server optimizer state is orphaned each round. The sweep deletes those
 * older than TESSERA_BLOB_ORPHAN_GRACE_SECONDS, so the disk cannot fill with them; younger ones may belong to work in
 * flight on another replica and are kept until a later boot. Logged and counted.
 */
@Injectable()
export class OrphanBlobSweepService implements OnApplicationBootstrap {
  private readonly blobs: BlobListing;

  constructor(
    private readonly views: RoundViewsRepository,
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
    @InjectPinoLogger('OrphanBlobSweep') private readonly logger: PinoLogger,
    store: BlobStore,
  ) {
    // The store's own layout: files under TESSERA_DATA_DIR/blobs, or objects (and incomplete uploads) in S3.
    this.blobs = store.listing();
  }

  async onApplicationBootstrap(): Promise<void> {
    try {
      await this.sweep();
    } catch (err) {
      // A sweep that fails (read-only disk, say) must not stop the hub: orphans only cost space. It is logged.
      this.logger.error({ err }, 'orphan blob sweep failed');
    }
  }

  async sweep(now = new Date()): Promise<OrphanSweepResult> {
    const before = new Date(now.getTime() - this.config.blobOrphanGraceSeconds * 1000);
    const result: OrphanSweepResult = { examined: 0, removed: 0, keptYoung: 0, removedStaging: 0 };
    result.removedStaging = await this.blobs.removeStaleStaging(before);
    // Listed first, references read after: a blob committed after the listing is not examined, and a row committed
    // before the reference query is seen; a blob both listed and newly referenced is younger than the grace period.
    const listed: { hash: string; modifiedAt: Date }[] = [];
    for await (const blob of this.blobs.list()) listed.push(blob);
    const referenced = await this.views.referencedBlobs();
    for (const blob of listed) {
      result.examined += 1;
      if (referenced.has(blob.hash)) continue;
      if (blob.modifiedAt >= before) {
        result.keptYoung += 1;
        continue;
      }
      await this.blobs.remove(blob.hash);
      result.removed += 1;
    }
    this.logger.info(
      { ...result, graceSeconds: this.config.blobOrphanGraceSeconds },
      result.removed + result.removedStaging > 0 ? 'orphan blobs removed' : 'no orphan blobs',
    );
    return result;
  }
}
