import { createHash } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import type { BlobStore } from './blob-store';
import {
  BlobIntegrityError,
  BlobNotFoundError,
  BlobRangeError,
  BlobStorageUnavailableError,
} from './blob-store.exception';

/** A store under test with the hooks the contract needs to reach behind it, as a fault or an operator would. */
export interface BlobStoreUnderTest {
  readonly store: BlobStore;
  /** Rewrites a committed blob's stored bytes behind the store's back (bit rot, a bad disk, a hand edit). */
  tamper(hash: string, mutate: (bytes: Buffer) => Buffer): Promise<void>;
  /** Deletes a committed blob behind the store's back (a lost object, an older backup restored). */
  lose(hash: string): Promise<void>;
  /** Cuts the store off its medium (a read-only mount, an unreachable object store); resolves to the undo. */
  cutOff(): Promise<() => Promise<void>>;
  /** Names of staged (uncommitted) leftovers in the medium; none once every upload committed or aborted. */
  staged(): Promise<string[]>;
  dispose(): Promise<void>;
}

export type BlobStoreFactory = (options: {
  onIntegrityFailure: (err: BlobIntegrityError) => void;
}) => Promise<BlobStoreUnderTest>;

/** Live memory an upload or a download may hold, whatever the blob's size (bytes): several parts of 5 MiB. */
export const STREAMING_MEMORY_BOUND = 32 * 1024 * 1024;
/** The blob streamed through that bound: three times it, so a store that buffered the whole blob must exceed it. */
const STREAMED_BLOB_BYTES = 3 * STREAMING_MEMORY_BOUND;
const CHUNK = 64 * 1024;

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Bytes of several read chunks with a recognisable pattern, unlike any other payload of another seed. */
export function payload(size = 300_000, seed = 0): Buffer {
  return Buffer.from(Array.from({ length: size }, (_, i) => (i * 31 + seed * 7) % 251));
}

async function drain(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function rejection(run: () => Promise<unknown>): Promise<unknown> {
  return run().then(
    () => undefined,
    (e: unknown) => e,
  );
}

/** V8's collector, to sample live memory rather than garbage not yet collected. */
function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** Live bytes (JS heap and Buffers) after a full collection. */
function liveBytes(gc: () => void): number {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/**
 * The contract every BlobStore meets (blob-store.ts), run against each implementation: the filesystem store in the
 * unit tests, the S3 store against a real S3-protocol server in the integration tests.
 */
export function describeBlobStoreContract(name: string, factory: BlobStoreFactory): void {
  describe(`${name}: the BlobStore contract`, () => {
    const open: BlobStoreUnderTest[] = [];
    let reported: BlobIntegrityError[] = [];
    async function underTest(): Promise<BlobStoreUnderTest> {
      reported = [];
      const t = await factory({ onIntegrityFailure: (e) => reported.push(e) });
      open.push(t);
      return t;
    }
    afterEach(async () => {
      for (const t of open.splice(0)) await t.dispose();
    });

    it('names a blob by the SHA-256 of its bytes and gives them back whole, streamed and verified', async () => {
      const { store } = await underTest();
      const bytes = payload();
      const hash = await store.put(bytes);
      expect(hash).toBe(sha256(bytes));
      expect(await store.has(hash)).toBe(true);
      expect(await store.size(hash)).toBe(bytes.length);
      expect((await store.get(hash)).equals(bytes)).toBe(true);
      expect((await drain(store.openRead(hash))).equals(bytes)).toBe(true);
      expect((await drain(await store.openVerifiedRead(hash))).equals(bytes)).toBe(true);
      await store.verify(hash);
    });

    it('tells the hash of the staged bytes so far without ending the staging, and commits under that name', async () => {
      const { store } = await underTest();
      const staged = await store.stage();
      const first = payload(10, 21);
      const second = payload(12, 22);
      expect(await staged.hashSoFar()).toBe(sha256(new Uint8Array(0)));
      await staged.write(first);
      expect(await staged.hashSoFar()).toBe(sha256(first));
      await staged.write(second);
      const whole = Buffer.concat([first, second]);
      expect(await staged.hashSoFar()).toBe(sha256(whole));
      expect(await staged.commit()).toEqual({ hash: sha256(whole), size: whole.length });
    });

    it('names staged bytes past the off-thread hashing threshold (256 KiB) at any point, and commits under that name', async () => {
      const { store } = await underTest();
      const staged = await store.stage();
      // The first write stays under the threshold; the second crosses it mid-chunk; the third adds a partial batch.
      const parts = [payload(200_000, 23), payload(400_003, 24), payload(1_000_001, 25)];
      for (let i = 0; i < parts.length; i += 1) {
        await staged.write(parts[i]!);
        expect(await staged.hashSoFar()).toBe(sha256(Buffer.concat(parts.slice(0, i + 1))));
      }
      const whole = Buffer.concat(parts);
      expect(await staged.commit()).toEqual({ hash: sha256(whole), size: whole.length });
      expect((await store.get(sha256(whole))).equals(whole)).toBe(true);
    });

    it('reads any range [start, end) of a blob: its first, middle and last bytes, the whole, and nothing', async () => {
      const { store } = await underTest();
      const bytes = payload(300_000, 13);
      const hash = await store.put(bytes);
      for (const [start, end] of [
        [0, 8],
        [8, 65_544],
        [123_457, 123_461],
        [bytes.length - 3, bytes.length],
        [0, bytes.length],
        [1000, 1000],
        [bytes.length, bytes.length],
      ] as const) {
        const part = await store.readRange(hash, start, end);
        expect([start, end, part.length]).toEqual([start, end, end - start]);
        expect(part.equals(bytes.subarray(start, end))).toBe(true);
      }
    });

    it('reads a range into memory the caller gives, leaving the rest of it untouched', async () => {
      const { store } = await underTest();
      const bytes = payload(300_000, 17);
      const hash = await store.put(bytes);
      // A view in the middle of a larger buffer, shared memory as the aggregation's slots are.
      const backing = new Uint8Array(new SharedArrayBuffer(70_000)).fill(0xa5);
      const target = backing.subarray(1_000, 66_536);
      await store.readRangeInto(hash, 123_457, target);
      expect(Buffer.from(target).equals(bytes.subarray(123_457, 123_457 + target.length))).toBe(true);
      expect(backing.subarray(0, 1_000).every((b) => b === 0xa5)).toBe(true);
      expect(backing.subarray(66_536).every((b) => b === 0xa5)).toBe(true);
      await store.readRangeInto(hash, bytes.length, new Uint8Array(0));
      const past = await rejection(() => store.readRangeInto(hash, bytes.length - 3, new Uint8Array(4)));
      expect(past).toBeInstanceOf(BlobRangeError);
      expect(past).toMatchObject({ hash, start: bytes.length - 3, end: bytes.length + 1, size: bytes.length });
      const missing = await rejection(() => store.readRangeInto(sha256(payload(10, 18)), 0, new Uint8Array(4)));
      expect(missing).toBeInstanceOf(BlobNotFoundError);
    });

    it('refuses a range past the blob, naming its size, and one that is not a range', async () => {
      const { store } = await underTest();
      const bytes = payload(1000, 14);
      const hash = await store.put(bytes);
      for (const [start, end] of [
        [990, 1001],
        [1000, 1004],
        [2000, 2004],
      ] as const) {
        const err = await rejection(() => store.readRange(hash, start, end));
        expect(err).toBeInstanceOf(BlobRangeError);
        expect(err).toMatchObject({ hash, start, end, size: 1000 });
        expect((err as Error).message).toContain('the blob holds 1000 bytes');
      }
      for (const [start, end] of [
        [10, 9],
        [-1, 4],
        [0.5, 4],
      ] as const) {
        expect(await rejection(() => store.readRange(hash, start, end))).toBeInstanceOf(BlobRangeError);
      }
    });

    it('answers a ranged read of a missing blob with BlobNotFoundError, even an empty one', async () => {
      const { store } = await underTest();
      const missing = sha256(payload(10, 15));
      for (const [start, end] of [
        [0, 4],
        [0, 0],
      ] as const) {
        const err = await rejection(() => store.readRange(missing, start, end));
        expect(err).toBeInstanceOf(BlobNotFoundError);
        expect((err as BlobNotFoundError).hash).toBe(missing);
      }
    });

    it('does not verify a ranged read (a part cannot be): the caller verifies the whole blob first', async () => {
      const t = await underTest();
      const hash = await t.store.put(payload(5000, 16));
      await t.tamper(hash, (b) => {
        b[100]! ^= 0xff;
        return b;
      });
      const part = await t.store.readRange(hash, 96, 104);
      expect(part[4]).toBe(payload(5000, 16)[100]! ^ 0xff);
      expect(await rejection(() => t.store.verify(hash))).toBeInstanceOf(BlobIntegrityError);
    });

    it('stores the empty blob under the SHA-256 of nothing', async () => {
      const { store } = await underTest();
      const hash = await store.put(new Uint8Array(0));
      expect(hash).toBe(sha256(new Uint8Array(0)));
      expect(await store.size(hash)).toBe(0);
      expect((await store.get(hash)).length).toBe(0);
    });

    it('stores the same bytes once under one name (put is idempotent)', async () => {
      const t = await underTest();
      const bytes = payload(1000, 1);
      const [a, b] = [await t.store.put(bytes), await t.store.put(Buffer.from(bytes))];
      expect(a).toBe(b);
      const listed: string[] = [];
      for await (const blob of t.store.listing().list()) listed.push(blob.hash);
      expect(listed).toEqual([a]);
      expect(await t.staged()).toEqual([]);
    });

    it('commits staged chunks under the hash of their concatenation, leaving nothing staged', async () => {
      const t = await underTest();
      const parts = [payload(70_000, 2), payload(1, 3), payload(200_000, 4)];
      const staged = await t.store.stage();
      for (const p of parts) await staged.write(p);
      const { hash, size } = await staged.commit();
      const whole = Buffer.concat(parts);
      expect({ hash, size }).toEqual({ hash: sha256(whole), size: whole.length });
      expect((await t.store.get(hash)).equals(whole)).toBe(true);
      expect(await t.staged()).toEqual([]);
      await staged.abort(); // a no-op once committed
      expect(await t.store.has(hash)).toBe(true);
    });

    it('drops an aborted upload entirely, and aborting twice is harmless', async () => {
      const t = await underTest();
      const bytes = payload(100_000, 5);
      const staged = await t.store.stage();
      await staged.write(bytes);
      expect(await t.staged()).not.toEqual([]);
      await staged.abort();
      await staged.abort();
      expect(await t.store.has(sha256(bytes))).toBe(false);
      expect(await t.staged()).toEqual([]);
    });

    it('finishes a staged upload without publishing it: commit then publishes it, abort drops it', async () => {
      const t = await underTest();
      const kept = payload(90_000, 31);
      const staged = await t.store.stage();
      await staged.write(kept);
      await staged.finish();
      await staged.finish(); // idempotent
      expect(await staged.hashSoFar()).toBe(sha256(kept));
      expect(await t.store.has(sha256(kept))).toBe(false); // not published until commit
      await expect(staged.write(payload(1, 32))).rejects.toThrow('no more bytes');
      expect(await staged.commit()).toEqual({ hash: sha256(kept), size: kept.length });
      expect((await t.store.get(sha256(kept))).equals(kept)).toBe(true);

      const dropped = payload(90_000, 33);
      const refused = await t.store.stage();
      await refused.write(dropped);
      await refused.finish();
      await refused.abort();
      expect(await t.store.has(sha256(dropped))).toBe(false);
      expect(await t.staged()).toEqual([]);
    });

    it('answers a missing blob with false from has and BlobNotFoundError from every read', async () => {
      const { store } = await underTest();
      const missing = sha256(payload(10, 6));
      expect(await store.has(missing)).toBe(false);
      for (const read of [
        () => store.get(missing),
        () => store.size(missing),
        () => drain(store.openRead(missing)),
        () => store.openVerifiedRead(missing),
      ]) {
        const err = await rejection(read);
        expect(err).toBeInstanceOf(BlobNotFoundError);
        expect((err as BlobNotFoundError).hash).toBe(missing);
      }
    });

    it('reports a blob lost behind its back as not found', async () => {
      const t = await underTest();
      const hash = await t.store.put(payload(5000, 7));
      await t.lose(hash);
      expect(await t.store.has(hash)).toBe(false);
      expect(await rejection(() => t.store.get(hash))).toBeInstanceOf(BlobNotFoundError);
    });

    it('refuses a name that is not a SHA-256 before touching the medium', async () => {
      const { store } = await underTest();
      for (const bad of ['../../etc/passwd', 'AB'.repeat(32), 'ab'.repeat(31)]) {
        expect(String(await rejection(() => store.get(bad)))).toContain('not a sha256 blob name');
      }
    });

    it('refuses a whole read of a blob with one flipped bit, naming it, and tells the reporter', async () => {
      const t = await underTest();
      const hash = await t.store.put(payload());
      await t.tamper(hash, (b) => {
        b[12_345]! ^= 0x01;
        return b;
      });
      const err = await rejection(() => t.store.get(hash));
      expect(err).toBeInstanceOf(BlobIntegrityError);
      expect((err as BlobIntegrityError).hash).toBe(hash);
      expect((err as Error).message).toContain(hash);
      expect(reported.map((e) => e.hash)).toEqual([hash]);
    });

    it('fails a streamed read at its end and never delivers the whole corrupted blob', async () => {
      const t = await underTest();
      const bytes = payload();
      const hash = await t.store.put(bytes);
      await t.tamper(hash, (b) => {
        b[b.length - 1]! ^= 0x01;
        return b;
      });
      const received: Buffer[] = [];
      const err = await rejection(async () => {
        for await (const c of t.store.openRead(hash)) received.push(c as Buffer);
      });
      expect(err).toBeInstanceOf(BlobIntegrityError);
      expect(Buffer.concat(received).length).toBeLessThan(bytes.length);
    });

    it('refuses to open a truncated blob for serving before a byte is read', async () => {
      const t = await underTest();
      const hash = await t.store.put(payload());
      await t.tamper(hash, (b) => b.subarray(0, b.length - 1));
      expect(await rejection(() => t.store.openVerifiedRead(hash))).toBeInstanceOf(BlobIntegrityError);
    });

    it('says "unavailable" when cut off from its medium, for staging, put and the probe, and recovers', async () => {
      const t = await underTest();
      await t.store.put(payload(10, 8));
      await t.store.probeWritable();
      const restore = await t.cutOff();
      try {
        for (const attempt of [
          () => t.store.stage(),
          () => t.store.put(payload(10, 9)),
          () => t.store.probeWritable(),
        ]) {
          const err = await rejection(attempt);
          expect(err).toBeInstanceOf(BlobStorageUnavailableError);
          expect((err as BlobStorageUnavailableError).code).toMatch(/^[A-Za-z_.]+$/);
        }
      } finally {
        await restore();
      }
      await t.store.probeWritable();
      expect(await t.store.put(payload(10, 9))).toBe(sha256(payload(10, 9)));
    });

    it('lists committed blobs for the orphan sweep and removes one by name', async () => {
      const t = await underTest();
      const before = Date.now() - 60_000;
      const hashes = [await t.store.put(payload(100, 10)), await t.store.put(payload(100, 11))];
      const listed: { hash: string; modifiedAt: Date }[] = [];
      for await (const blob of t.store.listing().list()) listed.push(blob);
      expect(listed.map((b) => b.hash).sort()).toEqual([...hashes].sort());
      for (const b of listed) expect(b.modifiedAt.getTime()).toBeGreaterThan(before);
      await t.store.listing().remove(hashes[0]!);
      expect(await t.store.has(hashes[0]!)).toBe(false);
      expect(await t.store.has(hashes[1]!)).toBe(true);
    });

    it('removes staged bytes a killed upload left, only once they are older than the cut-off', async () => {
      const t = await underTest();
      const abandoned = await t.store.stage(); // never committed nor aborted: the process "died"
      await abandoned.write(payload(1000, 12));
      expect(await t.store.listing().removeStaleStaging(new Date(Date.now() - 3_600_000))).toBe(0);
      expect(await t.staged()).not.toEqual([]);
      expect(await t.store.listing().removeStaleStaging(new Date(Date.now() + 60_000))).toBeGreaterThanOrEqual(1);
      expect(await t.staged()).toEqual([]);
      await abandoned.abort(); // releases what the test process still holds; nothing is left to drop
    });

    it(`streams a ${STREAMED_BLOB_BYTES / 2 ** 20} MiB blob in and out within ${STREAMING_MEMORY_BOUND / 2 ** 20} MiB of live memory`, async () => {
      const { store } = await underTest();
      const gc = collector();
      const baseline = liveBytes(gc);
      let peak = 0;
      const sample = () => (peak = Math.max(peak, liveBytes(gc) - baseline));
      const digest = createHash('sha256');
      const staged = await store.stage();
      // Chunks made as they are written (a recognisable pattern, each a fresh buffer), as a request body arrives.
      for (let offset = 0; offset < STREAMED_BLOB_BYTES; offset += CHUNK) {
        const chunk = Buffer.alloc(CHUNK, (offset / CHUNK) % 251);
        digest.update(chunk);
        await staged.write(chunk);
        if (offset % (2 * 1024 * 1024) === 0) sample();
      }
      const { hash, size } = await staged.commit();
      sample();
      expect({ hash, size }).toEqual({ hash: digest.digest('hex'), size: STREAMED_BLOB_BYTES });
      const uploadPeak = peak;
      peak = 0;
      let read = 0;
      for await (const chunk of store.openRead(hash)) {
        read += (chunk as Buffer).length;
        if (read % (2 * 1024 * 1024) < (chunk as Buffer).length) sample();
      }
      expect(read).toBe(STREAMED_BLOB_BYTES);
      expect(uploadPeak).toBeLessThan(STREAMING_MEMORY_BOUND);
      expect(peak).toBeLessThan(STREAMING_MEMORY_BOUND);
    }, 300_000);
  });
}
