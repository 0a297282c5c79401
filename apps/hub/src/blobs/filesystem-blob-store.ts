import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import {
  assertBlobName,
  assertRange,
  BlobStore,
  verifyingStream,
  type BlobListing,
  type StagedBlob,
} from './blob-store';
import { asStorageError, BlobIntegrityError, BlobNotFoundError, BlobRangeError } from './blob-store.exception';
import { FilesystemBlobListing } from './filesystem-blob-listing';
import { OffThreadSha256, sha256Off } from './off-thread-sha256';

export interface FilesystemBlobStoreOptions {
  /** Told of every corrupted blob found on a read (for the audit trail and the log), before the read fails. */
  onIntegrityFailure?: (err: BlobIntegrityError) => void;
}

/** Blobs as files `root/ab/abcdef…`, written to `root/tmp` first and renamed in place (atomic on one filesystem). */
export class FilesystemBlobStore extends BlobStore {
  private readonly onIntegrityFailure: (err: BlobIntegrityError) => void;

  constructor(
    private readonly root: string,
    options: FilesystemBlobStoreOptions = {},
  ) {
    super();
    this.onIntegrityFailure = options.onIntegrityFailure ?? (() => undefined);
  }

  async put(bytes: Uint8Array): Promise<string> {
    const staged = await this.stage();
    try {
      await staged.write(bytes);
    } catch (err) {
      await staged.abort();
      throw err;
    }
    return (await staged.commit()).hash;
  }

  async stage(): Promise<StagedBlob> {
    const tmp = join(this.root, 'tmp', `${Date.now()}-${randomBytes(8).toString('hex')}`);
    const handle = await storageStep('create a staged blob', async () => {
      await mkdir(join(this.root, 'tmp'), { recursive: true });
      return open(tmp, 'wx', 0o600);
    });
    // The one SHA-256 pass over the bytes (on a worker thread past 256 KiB): the blob's name.
    const hash = new OffThreadSha256();
    let size = 0;
    let done = false;
    /** Set by finish: the file is closed, its directory exists and its hash is known; only the rename is left. */
    let finished: Promise<string> | null = null;
    const finish = (): Promise<string> => {
      if (finished) return finished;
      const digest = hash.digest();
      digest.catch(() => undefined); // awaited below, after the close
      finished = storageStep('finish a staged blob', async () => {
        await handle.close();
        const final = await digest;
        await mkdir(join(this.root, final.slice(0, 2)), { recursive: true });
        return final;
      });
      return finished;
    };
    return {
      write: (chunk) =>
        storageStep('write a staged blob', async () => {
          if (finished) throw new Error('a staged blob takes no more bytes once finished');
          await hash.ready(); // room in the hashing pool's bound before posting more
          hash.update(chunk);
          size += chunk.length;
          await handle.write(chunk);
        }),
      hashSoFar: () => finished ?? hash.digestSoFar(),
      finish: async () => {
        await finish();
      },
      commit: () =>
        storageStep('commit a blob', async () => {
          done = true;
          try {
            const name = await finish();
            await rename(tmp, join(this.root, name.slice(0, 2), name));
            return { hash: name, size };
          } catch (err) {
            // Nothing half-stored stays behind; the failure to commit is what the caller hears.
            await rm(tmp, { force: true });
            throw err;
          }
        }),
      abort: () =>
        storageStep('drop a staged blob', async () => {
          if (done) return;
          done = true;
          hash.dispose();
          try {
            if (finished) await finished.catch(() => undefined);
            else await handle.close();
          } finally {
            await rm(tmp, { force: true });
          }
        }),
    };
  }

  async get(hash: string): Promise<Buffer> {
    const path = this.path(hash);
    const bytes = await storageStep('read a blob', () => readFile(path).catch(notFoundAs(hash)));
    const actual = await sha256Off(bytes);
    if (actual !== hash) {
      const err = new BlobIntegrityError(hash, actual);
      this.onIntegrityFailure(err);
      throw err;
    }
    return bytes;
  }

  openRead(hash: string): Readable {
    const path = this.path(hash);
    async function* bytes(): AsyncGenerator<Uint8Array> {
      try {
        for await (const chunk of createReadStream(path)) yield chunk as Buffer;
      } catch (err) {
        throw asStorageError('read a blob', notFoundAs(hash)(err));
      }
    }
    return verifyingStream(hash, bytes(), this.onIntegrityFailure);
  }

  async readRange(hash: string, start: number, end: number): Promise<Buffer> {
    assertRange(hash, start, end);
    const out = Buffer.allocUnsafe(end - start);
    await this.readInto(hash, start, out);
    return out;
  }

  override async readRangeInto(hash: string, start: number, target: Uint8Array): Promise<void> {
    assertRange(hash, start, start + target.length);
    await this.readInto(hash, start, target);
  }

  /** Fills `target` with the blob's bytes from `start` (the range already checked), or fails naming the blob. */
  private readInto(hash: string, start: number, target: Uint8Array): Promise<void> {
    const path = this.path(hash);
    const end = start + target.length;
    return storageStep('read part of a blob', async () => {
      const handle = await open(path, 'r').catch(notFoundAs(hash));
      try {
        let filled = 0;
        while (filled < target.length) {
          const { bytesRead } = await handle.read(target, filled, target.length - filled, start + filled);
          if (bytesRead === 0) throw new BlobRangeError(hash, start, end, (await handle.stat()).size);
          filled += bytesRead;
        }
      } finally {
        await handle.close();
      }
    });
  }

  async has(hash: string): Promise<boolean> {
    return stat(this.path(hash)).then(
      () => true,
      () => false,
    );
  }

  async size(hash: string): Promise<number> {
    const path = this.path(hash);
    return (await storageStep('read a blob', () => stat(path).catch(notFoundAs(hash)))).size;
  }

  async probeWritable(): Promise<void> {
    const probe = join(this.root, 'tmp', `health-${randomBytes(8).toString('hex')}`);
    await storageStep('write a probe file', async () => {
      await mkdir(join(this.root, 'tmp'), { recursive: true });
      const handle = await open(probe, 'wx', 0o600);
      try {
        await handle.write(randomBytes(64));
        await handle.sync();
      } finally {
        await handle.close();
        await rm(probe, { force: true });
      }
    });
  }

  listing(): BlobListing {
    return new FilesystemBlobListing(this.root);
  }

  private path(hash: string): string {
    assertBlobName(hash);
    return join(this.root, hash.slice(0, 2), hash);
  }
}

/** A rejection handler that turns "no such file" into BlobNotFoundError and re-throws anything else. */
function notFoundAs(hash: string): (err: unknown) => never {
  return (err) => {
    if ((err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT')
      throw new BlobNotFoundError(hash, { cause: err });
    throw err;
  };
}

/** Runs a storage operation, re-throwing a failure of the medium as BlobStorageUnavailableError. */
async function storageStep<T>(operation: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw asStorageError(operation, err);
  }
}
