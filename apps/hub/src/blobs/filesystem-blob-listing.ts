import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { assertBlobName, BLOB_NAME, type BlobListing } from './blob-store';

/**
 * The filesystem blob store's layout as the orphan sweep needs it: committed blobs at `root/ab/<sha256>`, staged
 * bytes in `root/tmp` (FilesystemBlobStore).
 */
export class FilesystemBlobListing implements BlobListing {
  constructor(private readonly root: string) {}

  async *list(): AsyncGenerator<{ hash: string; modifiedAt: Date }> {
    for (const prefix of await readdir(this.root).catch(() => [] as string[])) {
      if (!/^[0-9a-f]{2}$/.test(prefix)) continue;
      for (const name of await readdir(join(this.root, prefix)).catch(() => [] as string[])) {
        if (!BLOB_NAME.test(name) || !name.startsWith(prefix)) continue;
        const info = await stat(join(this.root, prefix, name)).catch(() => null);
        if (info) yield { hash: name, modifiedAt: info.mtime };
      }
    }
  }

  async remove(hash: string): Promise<void> {
    assertBlobName(hash);
    await rm(join(this.root, hash.slice(0, 2), hash), { force: true });
  }

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
