import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeUnwritable } from '../testing/unwritable-dir.test-util';
import { describeBlobStoreContract, payload } from './blob-store-contract.test-util';
import { BlobStorageUnavailableError } from './blob-store.exception';
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

const blobPath = (root: string, hash: string) => join(root, hash.slice(0, 2), hash);

describeBlobStoreContract('FilesystemBlobStore', ({ onIntegrityFailure }) => {
  const root = tempRoot();
  // The file system is reached synchronously; the contract's hooks are asynchronous for the S3 store's sake.
  return Promise.resolve({
    store: new FilesystemBlobStore(root, { onIntegrityFailure }),
    tamper(hash, mutate) {
      writeFileSync(blobPath(root, hash), mutate(readFileSync(blobPath(root, hash))));
      return Promise.resolve();
    },
    lose(hash) {
      rmSync(blobPath(root, hash));
      return Promise.resolve();
    },
    cutOff() {
      const restore = makeUnwritable(root);
      return Promise.resolve(() => Promise.resolve(restore()));
    },
    staged() {
      try {
        return Promise.resolve(readdirSync(join(root, 'tmp')));
      } catch {
        return Promise.resolve([]);
      }
    },
    dispose() {
      rmSync(root, { recursive: true, force: true });
      return Promise.resolve();
    },
  });
});

describe('FilesystemBlobStore on storage that cannot be written', () => {
  it('names the file-system code of the refusal', async () => {
    const root = tempRoot();
    const store = new FilesystemBlobStore(root);
    await store.put(payload(10));
    const restore = makeUnwritable(root);
    try {
      const err = await store.put(payload(10, 1)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BlobStorageUnavailableError);
      expect(['EACCES', 'EROFS', 'EPERM']).toContain((err as BlobStorageUnavailableError).code);
    } finally {
      restore();
    }
  });
});
