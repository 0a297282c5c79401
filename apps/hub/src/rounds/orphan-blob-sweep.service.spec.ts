import type { PinoLogger } from 'nestjs-pino';
import { describe, expect, it } from 'vitest';
import type { BlobListing, BlobStore } from '../blobs/blob-store';
import type { HubConfig } from '../config/config.schema';
import { OrphanBlobSweepService } from './orphan-blob-sweep.service';
import type { RoundViewsRepository } from './round-views.repository';

const hash = (c: string) => c.repeat(64);

describe('OrphanBlobSweepService over its repository', () => {
  it('removes unreferenced blobs older than the grace period, keeps young ones and every referenced one', async () => {
    const now = new Date('2026-12-07T12:00:00Z');
    const old = new Date(now.getTime() - 3_600_000);
    const blobs = new Map([
      [hash('a'), old],
      [hash('b'), old],
      [hash('c'), new Date(now.getTime() - 1_000)],
    ]);
    const listing: BlobListing = {
      // eslint-disable-next-line @typescript-eslint/require-await -- BlobListing.list() must be an AsyncGenerator; this double has nothing to await
      async *list() {
        for (const [h, modifiedAt] of blobs) yield { hash: h, modifiedAt };
      },
      remove: (h) => Promise.resolve(void blobs.delete(h)),
      removeStaleStaging: () => Promise.resolve(2),
    };
    const views = { referencedBlobs: () => Promise.resolve(new Set([hash('a')])) } as unknown as RoundViewsRepository;
    const logger = { info: () => undefined, error: () => undefined } as unknown as PinoLogger;
    const sweep = new OrphanBlobSweepService(views, { blobOrphanGraceSeconds: 600 } as HubConfig, logger, {
      listing: () => listing,
    } as unknown as BlobStore);
    expect(await sweep.sweep(now)).toEqual({ examined: 3, removed: 1, keptYoung: 1, removedStaging: 2 });
    expect([...blobs.keys()]).toEqual([hash('a'), hash('c')]);
  });
});
