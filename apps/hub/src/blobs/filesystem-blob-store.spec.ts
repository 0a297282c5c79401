import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeUnwritable } from '../testing/unwritable-dir.test-util';
import { BlobIntegrityError, BlobStorageUnavailableError } from './blob-store.exception';
import { FilesystemBlobStore } from './filesystem-blob-store';

const roots: string[] = [];
function tempRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'tessera-blobs-'));
  roots.push(root);
  return root;
}
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

/** Flips one bit of a stored blob, as a bad disk would. */
function flipBit(root: string, hash: string, byte: number): void {
  const path = join(root, hash.slice(0, 2), hash);
  const bytes = readFileSync(path);
  bytes[byte]! ^= 0x01;
  writeFileSync(path, bytes);
}

async function drain(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A blob of several read chunks (64 KiB each) with recognisable bytes. */
function payload(size = 300_000): Buffer {
  return Buffer.from(Array.from({ length: size }, (_, i) => (i * 31) % 251));
}

describe('FilesystemBlobStore integrity', () => {
  it('reads an intact blob, whole and streamed', async () => {
    const store = new FilesystemBlobStore(tempRoot());
    const bytes = payload();
    const hash = await store.put(bytes);
    expect(hash).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect((await store.get(hash)).equals(bytes)).toBe(true);
    expect((await drain(store.openRead(hash))).equals(bytes)).toBe(true);
    expect((await drain(await store.openVerifiedRead(hash))).equals(bytes)).toBe(true);
  });

  it('refuses a whole read of a blob with one flipped bit, naming it, and tells the reporter', async () => {
    const root = tempRoot();
    const seen: BlobIntegrityError[] = [];
    const store = new FilesystemBlobStore(root, { onIntegrityFailure: (e) => seen.push(e) });
    const hash = await store.put(payload());
    flipBit(root, hash, 12_345);
    const err = await store.get(hash).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlobIntegrityError);
    expect((err as BlobIntegrityError).hash).toBe(hash);
    expect((err as Error).message).toContain(hash);
    expect(seen.map((e) => e.hash)).toEqual([hash]);
  });

  it('fails a streamed read at its end and never delivers the whole corrupted blob', async () => {
    const root = tempRoot();
    const store = new FilesystemBlobStore(root);
    const bytes = payload();
    const hash = await store.put(bytes);
    flipBit(root, hash, bytes.length - 1);
    const received: Buffer[] = [];
    const err = await (async () => {
      for await (const c of store.openRead(hash)) received.push(c as Buffer);
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlobIntegrityError);
    // The chunk holding the flipped bit (the last) was withheld.
    expect(Buffer.concat(received).length).toBeLessThan(bytes.length);
  });

  it('refuses to open a corrupted blob for serving before a byte is read', async () => {
    const root = tempRoot();
    const store = new FilesystemBlobStore(root);
    const hash = await store.put(payload());
    flipBit(root, hash, 0);
    await expect(store.openVerifiedRead(hash)).rejects.toBeInstanceOf(BlobIntegrityError);
  });
});

describe('FilesystemBlobStore on storage that cannot be written', () => {
  it('says "unavailable" with the file-system code, for staging, put and the probe', async () => {
    const root = tempRoot();
    const store = new FilesystemBlobStore(root);
    await store.put(payload(10));
    await store.probeWritable();
    const restore = makeUnwritable(root);
    try {
      for (const attempt of [() => store.stage(), () => store.put(payload(10)), () => store.probeWritable()]) {
        const err = await attempt().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(BlobStorageUnavailableError);
        expect(['EACCES', 'EROFS', 'EPERM']).toContain((err as BlobStorageUnavailableError).code);
      }
    } finally {
      restore();
    }
    await store.probeWritable();
  });
});
