import { createHash, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { INLINE_SHA256_BYTES, OffThreadSha256, Sha256WorkerPool } from './off-thread-sha256';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const KiB = 1024;
const MiB = 1024 * KiB;

/** A deterministic pseudo-random sequence (xorshift32) for chunk sizes, so a failure can be replayed. */
function chunkSizes(seed: number, max: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return 1 + (x % max);
  };
}

/** Feeds `bytes` in chunks drawn from `next`, awaiting ready() after each as a stream does. */
async function feed(hasher: OffThreadSha256, bytes: Buffer, next: () => number): Promise<void> {
  for (let at = 0; at < bytes.length;) {
    const end = Math.min(bytes.length, at + next());
    hasher.update(bytes.subarray(at, end));
    await hasher.ready();
    at = end;
  }
}

describe('OffThreadSha256', () => {
  const pools: Sha256WorkerPool[] = [];
  const poolOf = (options: ConstructorParameters<typeof Sha256WorkerPool>[0] = {}) => {
    const pool = new Sha256WorkerPool({ size: 2, ...options });
    pools.push(pool);
    return pool;
  };
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()));
  });

  const sizes = [
    0,
    1,
    63,
    64,
    INLINE_SHA256_BYTES - 1,
    INLINE_SHA256_BYTES,
    INLINE_SHA256_BYTES + 1,
    2 * INLINE_SHA256_BYTES,
    3 * MiB + 17,
    9 * MiB - 5,
  ];

  it.each(sizes)('matches crypto.createHash on %i bytes, in one chunk and in random chunks', async (size) => {
    const pool = poolOf();
    const bytes = randomBytes(size);
    const whole = new OffThreadSha256(pool);
    whole.update(bytes);
    expect(await whole.digest()).toBe(sha256(bytes));
    for (const [seed, max] of [
      [size + 1, size <= INLINE_SHA256_BYTES + 1 ? 7 : 4 * KiB],
      [size + 2, 70 * KiB],
      [size + 3, 700 * KiB],
    ] as const) {
      const chunked = new OffThreadSha256(pool);
      await feed(chunked, bytes, chunkSizes(seed, max));
      expect(await chunked.digest()).toBe(sha256(bytes));
    }
  });

  it('hashes inline below the threshold and on a worker once the input reaches it', async () => {
    const pool = poolOf();
    const small = new OffThreadSha256(pool);
    small.update(randomBytes(INLINE_SHA256_BYTES - 1));
    expect(small.offThread).toBe(false);
    await small.digest();
    expect(pool.workerCount).toBe(0);

    const large = new OffThreadSha256(pool);
    large.update(randomBytes(INLINE_SHA256_BYTES - 1));
    large.update(randomBytes(1));
    expect(large.offThread).toBe(true);
    expect(pool.workerCount).toBe(1);
    await large.digest();
  });

  it('names the bytes so far at any point, inline and off-thread, and goes on hashing', async () => {
    const pool = poolOf();
    const bytes = randomBytes(2 * MiB + 3);
    const hasher = new OffThreadSha256(pool);
    expect(await hasher.digestSoFar()).toBe(sha256(new Uint8Array(0)));
    const cuts = [1, INLINE_SHA256_BYTES - 1, INLINE_SHA256_BYTES, INLINE_SHA256_BYTES + 1, MiB + 9, bytes.length];
    let at = 0;
    for (const cut of cuts) {
      hasher.update(bytes.subarray(at, cut));
      at = cut;
      expect(await hasher.digestSoFar()).toBe(sha256(bytes.subarray(0, cut)));
    }
    expect(await hasher.digest()).toBe(sha256(bytes));
  });

  it('keeps concurrent hashes apart on shared workers, whatever their interleaving', async () => {
    const pool = poolOf({ size: 1 });
    const inputs = [5 * MiB + 1, 3 * MiB, 700 * KiB, 100].map((n) => randomBytes(n));
    const hashers = inputs.map(() => new OffThreadSha256(pool));
    const nexts = inputs.map((_, i) => chunkSizes(i + 11, 300 * KiB));
    const offsets = inputs.map(() => 0);
    while (offsets.some((o, i) => o < inputs[i]!.length)) {
      for (let i = 0; i < inputs.length; i += 1) {
        const end = Math.min(inputs[i]!.length, offsets[i]! + nexts[i]!());
        hashers[i]!.update(inputs[i]!.subarray(offsets[i], end));
        offsets[i] = end;
      }
      await Promise.all(hashers.map((h) => h.ready()));
    }
    expect(await Promise.all(hashers.map((h) => h.digest()))).toEqual(inputs.map(sha256));
  });

  it('copies the bytes: the caller may reuse its buffer as soon as update returns', async () => {
    const pool = poolOf();
    const bytes = randomBytes(3 * MiB);
    const hasher = new OffThreadSha256(pool);
    const scratch = Buffer.alloc(100 * KiB);
    for (let at = 0; at < bytes.length; at += scratch.length) {
      const n = bytes.copy(scratch, 0, at, at + scratch.length);
      hasher.update(scratch.subarray(0, n));
      scratch.fill(0xee); // overwritten before the worker could have read it
    }
    expect(await hasher.digest()).toBe(sha256(bytes));
  });

  it('bounds the bytes in flight: ready() waits while the budget is spent and resolves once the worker caught up', async () => {
    const bound = INLINE_SHA256_BYTES * 2;
    const pool = poolOf({ size: 1, maxBytesInFlight: bound });
    const bytes = randomBytes(4 * MiB);
    const hasher = new OffThreadSha256(pool);
    hasher.update(bytes); // posted at once: nothing acknowledged yet
    expect(pool.bytesInFlight).toBeGreaterThanOrEqual(bound);
    let resolved = false;
    const waiting = hasher.ready().then(() => (resolved = true));
    await Promise.resolve();
    expect(resolved).toBe(false);
    await waiting;
    expect(pool.bytesInFlight).toBeLessThan(bound);
    expect(await hasher.digest()).toBe(sha256(bytes));
    expect(pool.bytesInFlight).toBe(0);
  });

  it('keeps many feeders that await ready() before each update within the bound (one batch of room each)', async () => {
    const bound = 4 * INLINE_SHA256_BYTES;
    const pool = poolOf({ size: 1, maxBytesInFlight: bound });
    const inputs = Array.from({ length: 16 }, () => randomBytes(3 * INLINE_SHA256_BYTES));
    let peak = 0;
    const digests = await Promise.all(
      inputs.map(async (bytes) => {
        const hasher = new OffThreadSha256(pool);
        for (let at = 0; at < bytes.length; at += INLINE_SHA256_BYTES) {
          await hasher.ready();
          hasher.update(bytes.subarray(at, at + INLINE_SHA256_BYTES));
          peak = Math.max(peak, pool.bytesInFlight);
        }
        return hasher.digest();
      }),
    );
    expect(digests).toEqual(inputs.map(sha256));
    // Without grants, all 16 feeders post as soon as one batch is acknowledged: 16 batches past the bound.
    expect(peak).toBeLessThanOrEqual(bound + INLINE_SHA256_BYTES);
  });

  it('rejects digest and ready, and refuses updates, when its worker fails; later hashes get a new worker', async () => {
    const failing = poolOf({
      size: 1,
      workerSource: `require('node:worker_threads').parentPort.on('message', () => { throw new Error('disk on fire'); });`,
    });
    const hasher = new OffThreadSha256(failing);
    hasher.update(randomBytes(INLINE_SHA256_BYTES + 1));
    const digest = hasher.digest();
    await expect(digest).rejects.toThrow(/SHA-256 on a worker thread failed: disk on fire/);
    await expect(hasher.ready()).rejects.toThrow('disk on fire');
    expect(() => hasher.update(new Uint8Array(1))).toThrow('disk on fire');
    expect(failing.bytesInFlight).toBe(0);
    expect(failing.workerCount).toBe(0);

    // The pool spawns a replacement for the next hash (which fails again with this program, but cleanly).
    const next = new OffThreadSha256(failing);
    next.update(randomBytes(INLINE_SHA256_BYTES));
    expect(failing.workerCount).toBe(1);
    await expect(next.digest()).rejects.toThrow('disk on fire');
  });

  it('fails pending digests when the pool closes mid-stream, and leaves no worker running', async () => {
    const pool = poolOf();
    const hasher = new OffThreadSha256(pool);
    hasher.update(randomBytes(4 * MiB));
    const digest = expect(hasher.digest()).rejects.toThrow('closed');
    await pool.close();
    await digest;
    expect(pool.workerCount).toBe(0);
    // A small input still hashes inline; a large one cannot go off-thread any more.
    const small = new OffThreadSha256(pool);
    small.update(Buffer.from('abc'));
    expect(await small.digest()).toBe(sha256(Buffer.from('abc')));
    expect(() => new OffThreadSha256(pool).update(randomBytes(INLINE_SHA256_BYTES))).toThrow('closed');
  });

  it('takes no bytes after its digest, and a dropped hash rejects the digest it still owed', async () => {
    const pool = poolOf();
    const done = new OffThreadSha256(pool);
    done.update(randomBytes(10));
    await done.digest();
    expect(() => done.update(new Uint8Array(1))).toThrow('no more bytes');
    await expect(done.digest()).rejects.toThrow('already digested');

    const dropped = new OffThreadSha256(pool);
    dropped.update(randomBytes(INLINE_SHA256_BYTES + 5));
    const owed = dropped.digestSoFar();
    dropped.dispose();
    await expect(owed).rejects.toThrow('dropped');
  });
});
