import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { InjectPinoLogger, PinoLogger } from 'nestjs-pino';
import { DataSource } from 'typeorm';
import { HUB_CONFIG } from '../config/hub-config';
import type { HubConfig } from '../config/config.schema';

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
 * Every blob a database row can name: published and resulting models, accepted updates, the current model and the
 * server optimizer's state. A blob named by none of them is an orphan.
 */
const REFERENCED_BLOBS = `
  SELECT model_hash AS hash FROM rounds
  UNION SELECT result_model_hash FROM rounds WHERE result_model_hash IS NOT NULL
  UNION SELECT update_hash FROM round_participants WHERE update_hash IS NOT NULL
  UNION SELECT current_model_hash FROM studies WHERE current_model_hash IS NOT NULL
  UNION SELECT optimizer_state_hash FROM studies WHERE optimizer_state_hash IS NOT NULL`;

/**
 * Boot-time sweep of orphan blobs (docs/reliability.md). Bytes are committed to the blob store before the row that
 * names them commits (the row must never name a missing blob); a crash or a rolled-back transaction in between leaves
 * bytes nothing references, and an earlier server optimizer state is orphaned each round. The sweep deletes those
 * older than TESSERA_BLOB_ORPHAN_GRACE_SECONDS, so the disk cannot fill with them; younger ones may belong to work in
 * flight on another replica and are kept until a later boot. Logged and counted.
 */
const SHA256 = /^[0-9a-f]{64}$/;

/**
 * The filesystem blob store's layout as the sweep needs it: committed blobs at `root/ab/<sha256>`, staged bytes in
 * `root/tmp` (FilesystemBlobStore). Kept here, beside the only code that deletes blobs, rather than in the BlobStore
 * port; an object store would need its own listing.
 */
export class FilesystemBlobListing {
  constructor(private readonly root: string) {}

  async *list(): AsyncGenerator<{ hash: string; modifiedAt: Date }> {
    for (const prefix of await readdir(this.root).catch(() => [] as string[])) {
      if (!/^[0-9a-f]{2}$/.test(prefix)) continue;
      for (const name of await readdir(join(this.root, prefix)).catch(() => [] as string[])) {
        if (!SHA256.test(name) || !name.startsWith(prefix)) continue;
        const info = await stat(join(this.root, prefix, name)).catch(() => null);
        if (info) yield { hash: name, modifiedAt: info.mtime };
      }
    }
  }

  async remove(hash: string): Promise<void> {
    if (!SHA256.test(hash)) throw new Error(`not a sha256 blob name: ${hash}`);
    await rm(join(this.root, hash.slice(0, 2), hash), { force: true });
  }

  /** Staged files older than `before` (uploads a killed process never finished): deletes them, returns how many. */
  async removeStaleStaging(before: Date): Promise<number> {
    const tmp = join(this.root, 'tmp');
    let removed = 0;
    for (const name of await readdir(tmp).catch(() => [] as string[])) {
      const info = await stat(join(tmp, name)).catch(() => null);
      if (info?.isFile() && info.mtime < before) {
        await rm(join(tmp, name), { force: true });
        removed += 1;
      }
    }
    return removed;
  }
}

@Injectable()
export class OrphanBlobSweepService implements OnApplicationBootstrap {
  private readonly blobs: FilesystemBlobListing;

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
    @InjectPinoLogger('OrphanBlobSweep') private readonly logger: PinoLogger,
  ) {
    // The directory app.module gives the FilesystemBlobStore.
    this.blobs = new FilesystemBlobListing(join(config.dataDir, 'blobs'));
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
    const rows = (await this.db.query(REFERENCED_BLOBS)) as { hash: string }[];
    const referenced = new Set(rows.map((r) => r.hash.trim()));
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
