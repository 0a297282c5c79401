import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { BlobStore, type StagedBlob } from './blob-store';

const HASH = /^[0-9a-f]{64}$/;

/** Blobs as files `root/ab/abcdef…`, written to `root/tmp` first and renamed in place (atomic on one filesystem). */
export class FilesystemBlobStore extends BlobStore {
  constructor(private readonly root: string) {
    super();
  }

  async put(bytes: Uint8Array): Promise<string> {
    const staged = await this.stage();
    await staged.write(bytes);
    return (await staged.commit()).hash;
  }

  async stage(): Promise<StagedBlob> {
    const tmpDir = join(this.root, 'tmp');
    await mkdir(tmpDir, { recursive: true });
    const tmp = join(tmpDir, `${Date.now()}-${randomBytes(8).toString('hex')}`);
    const handle: FileHandle = await open(tmp, 'wx', 0o600);
    const hash = createHash('sha256');
    let size = 0;
    let done = false;
    return {
      write: async (chunk) => {
        hash.update(chunk);
        size += chunk.length;
        await handle.write(chunk);
      },
      commit: async () => {
        done = true;
        await handle.close();
        const name = hash.digest('hex');
        const dir = join(this.root, name.slice(0, 2));
        await mkdir(dir, { recursive: true });
        await rename(tmp, join(dir, name));
        return { hash: name, size };
      },
      abort: async () => {
        if (done) return;
        done = true;
        await handle.close();
        await rm(tmp, { force: true });
      },
    };
  }

  async get(hash: string): Promise<Buffer> {
    return readFile(this.path(hash));
  }

  openRead(hash: string): Readable {
    return createReadStream(this.path(hash));
  }

  async has(hash: string): Promise<boolean> {
    return stat(this.path(hash)).then(
      () => true,
      () => false,
    );
  }

  async size(hash: string): Promise<number> {
    return (await stat(this.path(hash))).size;
  }

  private path(hash: string): string {
    if (!HASH.test(hash)) throw new Error(`not a sha256 blob name: ${hash}`);
    return join(this.root, hash.slice(0, 2), hash);
  }
}
