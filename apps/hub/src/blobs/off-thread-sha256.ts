import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/**
 * Bytes hashed on the calling thread when the whole input is shorter than this (256 KiB): posting to a worker costs
 * a copy and two messages, more than hashing a small input where it is (SHA-256 runs at ~1 GB/s with SHA-NI).
 */
export const INLINE_SHA256_BYTES = 1 << 18;
/** Bytes posted to the worker per message (the same 256 KiB): few messages, one copy of every byte. */
const BATCH_BYTES = INLINE_SHA256_BYTES;
/**
 * Default bound on bytes posted and not yet hashed, across every hasher of a pool (8 MiB): 32 batches, enough to keep
 * a worker busy (~8 ms of hashing at 1 GB/s) while keeping the hub's peak memory near what it was with inline hashing.
 */
const DEFAULT_MAX_BYTES_IN_FLIGHT = 8 << 20;
/**
 * The worker allocates little but a message object per batch: a small young generation (MiB) keeps its resident
 * memory small instead of letting the default semi-spaces grow to tens of MiB between scavenges.
 */
const WORKER_YOUNG_GENERATION_MB = 4;

/**
 * The worker's program, evaluated from this string (Worker `eval: true`) so that it runs alike from the compiled
 * dist and from vitest's on-the-fly TypeScript. One `Hash` per hasher id; every batch is handed back with its
 * acknowledgement (transferred again), which frees that much of the pool's in-flight budget and lets the main thread
 * reuse the buffer: the batches' memory stays within the bound instead of waiting for the worker's collector.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
const hashOf = (id) => {
  let h = hashes.get(id);
  if (!h) { h = createHash('sha256'); hashes.set(id, h); }
  return h;
};
parentPort.on('message', (m) => {
  if (m.op === 'update') {
    hashOf(m.id).update(new Uint8Array(m.bytes, 0, m.length));
    parentPort.postMessage({ op: 'ack', id: m.id, bytes: m.bytes }, [m.bytes]);
  } else if (m.op === 'digest') {
    const h = hashOf(m.id);
    if (m.final) hashes.delete(m.id);
    const hex = m.final ? h.digest('hex') : h.copy().digest('hex');
    parentPort.postMessage({ op: 'digest', id: m.id, final: m.final, hex });
  } else if (m.op === 'drop') {
    hashes.delete(m.id);
  }
});
`;

/** What a hasher asks of its worker (the pool adds the hasher's id). */
type Command = { op: 'update'; bytes: ArrayBuffer; length: number } | { op: 'digest'; final: boolean } | { op: 'drop' };
type FromWorker =
  { op: 'ack'; id: number; bytes: ArrayBuffer } | { op: 'digest'; id: number; final: boolean; hex: string };

/** What a pool tells a hasher that lives on one of its workers. */
interface PooledHasher {
  digested(hex: string): void;
  failed(err: Error): void;
}

/** A hasher's line to its worker: messages posted in order to one thread. */
interface WorkerLink {
  post(message: Command): void;
}

/** One worker and the hashers pinned to it (a hasher's messages must reach one thread, in order). */
interface PoolWorker {
  worker: Worker;
  hashers: Map<number, PooledHasher>;
  /** Batches and digests posted and not answered yet: the worker keeps the process alive only while > 0. */
  pending: number;
  /** Bytes posted to this worker and not acknowledged (given back to the pool's budget if the worker dies). */
  unacked: number;
}

export interface Sha256WorkerPoolOptions {
  /** Worker threads (default: one per core beyond the main thread's, 1 to 4). */
  size?: number;
  /** Bytes posted and not yet hashed, all hashers together, past which `ready()` waits (default 8 MiB). */
  maxBytesInFlight?: number;
  /** The workers' program; tests replace it to make a worker fail. */
  workerSource?: string;
}

/**
 * Worker threads that compute SHA-256 for OffThreadSha256, created on first use. Memory is bounded: every batch
 * posted counts against `maxBytesInFlight` until the worker acknowledges it, and a hasher's `ready()` waits while the
 * budget is spent (backpressure on the streams that feed them). An idle worker does not keep the process alive (it
 * is unref'd whenever nothing is pending); `close()` terminates them. A worker that dies fails the hashers pinned to
 * it — their `ready()` and `digest()` reject with the reason — and later hashers get a new one.
 */
export class Sha256WorkerPool {
  private readonly size: number;
  private readonly maxBytesInFlight: number;
  private readonly workerSource: string;
  private readonly workers: PoolWorker[] = [];
  private inFlight = 0;
  private waiters: (() => void)[] = [];
  /**
   * Bytes promised to hashers that `room()` let through and that have not posted yet (one batch each): with 64
   * uploads feeding at once, letting every waiter go when one batch is acknowledged overshot the bound k-fold.
   */
  private granted = 0;
  /** Batches handed back by the workers, for reuse (at most the in-flight bound's worth). */
  private readonly spare: Buffer[] = [];
  private nextId = 1;
  private closed = false;

  constructor(options: Sha256WorkerPoolOptions = {}) {
    this.size = options.size ?? Math.max(1, Math.min(4, availableParallelism() - 1));
    this.maxBytesInFlight = options.maxBytesInFlight ?? DEFAULT_MAX_BYTES_IN_FLIGHT;
    this.workerSource = options.workerSource ?? WORKER_SOURCE;
    if (!Number.isInteger(this.size) || this.size < 1)
      throw new Error(`a SHA-256 pool needs ≥ 1 worker, not ${this.size}`);
    if (!(this.maxBytesInFlight >= BATCH_BYTES)) {
      throw new Error(`a SHA-256 pool's in-flight bound must be at least one batch (${BATCH_BYTES} bytes)`);
    }
  }

  /** Bytes posted to workers and not yet hashed. */
  get bytesInFlight(): number {
    return this.inFlight;
  }

  /** Worker threads running now. */
  get workerCount(): number {
    return this.workers.length;
  }

  /** An empty batch of BATCH_BYTES that owns its ArrayBuffer whole (transferring it detaches nothing else). */
  takeBatch(): Buffer {
    return this.spare.pop() ?? Buffer.allocUnsafeSlow(BATCH_BYTES);
  }

  /** Takes back a batch the worker hashed or a hasher no longer needs: kept while spares and bytes in flight fit. */
  giveBack(batch: Buffer): void {
    if ((this.spare.length + 1) * BATCH_BYTES + this.inFlight <= this.maxBytesInFlight) this.spare.push(batch);
  }

  /** Resolves at once while the in-flight budget has room, else once the workers have caught up. */
  room(): Promise<void> {
    if (this.closed || (this.waiters.length === 0 && this.inFlight + this.granted < this.maxBytesInFlight)) {
      if (!this.closed) this.granted += BATCH_BYTES;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Pins a hasher to the least-loaded worker (creating workers up to `size`) and returns its line to it. */
  attach(hasher: PooledHasher): WorkerLink {
    if (this.closed) throw new Error('the SHA-256 worker pool is closed');
    const slot = this.pick();
    const id = this.nextId++;
    slot.hashers.set(id, hasher);
    return {
      post: (message) => {
        if (!this.workers.includes(slot)) throw new Error('the SHA-256 worker of this hash stopped');
        if (message.op === 'drop') {
          slot.hashers.delete(id);
        } else {
          this.busy(slot, +1);
        }
        if (message.op === 'update') {
          slot.unacked += message.bytes.byteLength;
          this.inFlight += message.bytes.byteLength;
        }
        slot.worker.postMessage({ ...message, id }, message.op === 'update' ? [message.bytes] : []);
      },
    };
  }

  /** Terminates every worker; hashers still pinned to one fail, and no hasher can go off-thread any more. */
  async close(): Promise<void> {
    this.closed = true;
    const slots = this.workers.splice(0);
    for (const slot of slots) this.fail(slot, new Error('the SHA-256 worker pool was closed'));
    this.release();
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  private pick(): PoolWorker {
    if (this.workers.length < this.size) return this.spawn();
    let best = this.workers[0]!;
    for (const w of this.workers) if (w.hashers.size < best.hashers.size) best = w;
    return best;
  }

  private spawn(): PoolWorker {
    const worker = new Worker(this.workerSource, {
      eval: true,
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
    });
    worker.unref();
    const slot: PoolWorker = { worker, hashers: new Map(), pending: 0, unacked: 0 };
    worker.on('message', (m: FromWorker) => {
      this.busy(slot, -1);
      if (m.op === 'ack') {
        slot.unacked -= m.bytes.byteLength;
        this.inFlight -= m.bytes.byteLength;
        this.giveBack(Buffer.from(m.bytes));
        this.release();
      } else {
        slot.hashers.get(m.id)?.digested(m.hex);
        if (m.final) slot.hashers.delete(m.id);
      }
    });
    worker.on('error', (err) => this.retire(slot, err));
    worker.on('exit', (code) => this.retire(slot, new Error(`the SHA-256 worker exited (code ${code})`)));
    this.workers.push(slot);
    return slot;
  }

  private retire(slot: PoolWorker, err: Error): void {
    const at = this.workers.indexOf(slot);
    if (at < 0) return;
    this.workers.splice(at, 1);
    this.fail(slot, err);
    this.release();
  }

  private fail(slot: PoolWorker, err: Error): void {
    this.inFlight -= slot.unacked;
    slot.unacked = 0;
    const hashers = [...slot.hashers.values()];
    slot.hashers.clear();
    for (const hasher of hashers) hasher.failed(err);
  }

  private busy(slot: PoolWorker, delta: number): void {
    slot.pending += delta;
    if (delta > 0 && slot.pending === 1) slot.worker.ref();
    if (delta < 0 && slot.pending === 0) slot.worker.unref();
  }

  /** Gives back a batch of room `room()` granted, once the hasher posted (or will not post) its batch. */
  returnGrant(): void {
    this.granted = Math.max(0, this.granted - BATCH_BYTES);
    this.release();
  }

  /** Lets waiting hashers go, one batch of room each (all of them once the pool is closed). */
  private release(): void {
    while (this.waiters.length > 0 && (this.closed || this.inFlight + this.granted < this.maxBytesInFlight)) {
      if (!this.closed) this.granted += BATCH_BYTES;
      this.waiters.shift()!();
    }
  }
}

/**
 * An incremental SHA-256 (FIPS 180-4) whose hashing runs on a worker thread once the input reaches 256 KiB, so a
 * 40 MB upload costs the main thread one memcpy per byte instead of the hash (~40 ms per upload at 1 GB/s, on the
 * thread that also serves every other request). Shorter inputs are hashed inline at `digest()`.
 *
 * `update()` copies the bytes (the caller may reuse its buffer) into 256 KiB batches that are transferred to the
 * worker, the last one partly filled (feed it chunks of 256 KiB or more). A stream feeding it awaits `ready()` before
 * each update: it waits while the pool's bytes in flight are at their bound, then grants this hash one batch of room.
 * `digestSoFar()` names the bytes so far without ending the hash; `digest()` ends it. A failure of the worker rejects
 * `ready()` and `digest()` and makes `update()` throw. `dispose()` drops an unfinished hash (and any room it held).
 */
export class OffThreadSha256 implements PooledHasher {
  private batch: Buffer | null = null;
  private batchLength = 0;
  private link: WorkerLink | null = null;
  private failure: Error | null = null;
  private ended = false;
  /** Whether `ready()` got a batch of room from the pool that this hash has not used yet. */
  private holdsGrant = false;
  /** Digests requested and not answered, in the order the worker answers them. */
  private readonly digests: { resolve: (hex: string) => void; reject: (err: Error) => void }[] = [];

  constructor(private readonly pool: Sha256WorkerPool = sharedSha256Pool()) {}

  /** Whether the hashing moved to a worker (the input reached INLINE_SHA256_BYTES). */
  get offThread(): boolean {
    return this.link !== null;
  }

  update(chunk: Uint8Array): void {
    if (this.failure) throw this.failure;
    if (this.ended) throw new Error('a SHA-256 takes no more bytes after its digest');
    let offset = 0;
    while (offset < chunk.length) {
      this.batch ??= this.pool.takeBatch();
      const take = Math.min(BATCH_BYTES - this.batchLength, chunk.length - offset);
      this.batch.set(chunk.subarray(offset, offset + take), this.batchLength);
      this.batchLength += take;
      offset += take;
      if (this.batchLength === BATCH_BYTES) this.post();
    }
    // Once off-thread nothing is held between calls: with 64 concurrent uploads (two hashes each) a partial batch
    // kept per hash cost 32 MiB of peak memory. Feeders write in batches of 256 KiB or more (the receiver's).
    if (this.link && this.batchLength > 0) this.post();
  }

  /** Resolves when the stream may post more (the pool has room in flight); rejects once the worker failed. */
  ready(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    this.giveBackGrant();
    // Also before the first post: 64 uploads crossing the threshold together would otherwise overshoot the bound.
    return this.pool.room().then(() => {
      this.holdsGrant = true;
      if (this.failure || this.ended) this.giveBackGrant();
      if (this.failure) throw this.failure;
    });
  }

  /** The lowercase hex SHA-256 of the bytes so far; the hash goes on. */
  digestSoFar(): Promise<string> {
    return this.requestDigest(false);
  }

  /** The lowercase hex SHA-256 of all the bytes; no update may follow. */
  digest(): Promise<string> {
    const hex = this.requestDigest(true);
    this.ended = true;
    this.giveBackGrant();
    return hex;
  }

  /** Forgets an unfinished hash (an aborted upload): frees its state on the worker. No-op once digested. */
  dispose(): void {
    if (this.ended) return;
    this.ended = true;
    this.giveBackGrant();
    if (this.batch) this.pool.giveBack(this.batch);
    this.batch = null;
    const pending = this.digests.splice(0);
    for (const d of pending) d.reject(new Error('the SHA-256 was dropped before its digest'));
    if (this.link && !this.failure) {
      try {
        this.link.post({ op: 'drop' });
      } catch {
        // The worker is gone, and the hash state with it.
      }
    }
  }

  /** @internal Called by the pool with a digest the worker computed (answers the oldest request). */
  digested(hex: string): void {
    this.digests.shift()?.resolve(hex);
  }

  /** @internal Called by the pool when this hash's worker died. */
  failed(err: Error): void {
    if (this.failure) return;
    this.failure = new Error(`SHA-256 on a worker thread failed: ${err.message}`, { cause: err });
    this.batch = null;
    this.giveBackGrant();
    for (const d of this.digests.splice(0)) d.reject(this.failure);
  }

  private requestDigest(final: boolean): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.ended) return Promise.reject(new Error('this SHA-256 was already digested'));
    if (!this.link) {
      const hex = createHash('sha256')
        .update(this.batch ? this.batch.subarray(0, this.batchLength) : new Uint8Array(0))
        .digest('hex');
      if (final && this.batch) {
        this.pool.giveBack(this.batch);
        this.batch = null;
      }
      return Promise.resolve(hex);
    }
    if (this.batchLength > 0) this.post();
    return new Promise<string>((resolve, reject) => {
      this.digests.push({ resolve, reject });
      try {
        this.link!.post({ op: 'digest', final });
      } catch (err) {
        this.failed(err as Error);
      }
    });
  }

  private giveBackGrant(): void {
    if (!this.holdsGrant) return;
    this.holdsGrant = false;
    this.pool.returnGrant();
  }

  /** Transfers the batch (its first batchLength bytes count) to the worker, attaching to one on the first call. */
  private post(): void {
    const batch = this.batch!;
    const length = this.batchLength;
    this.batch = null;
    this.batchLength = 0;
    if (!this.link) {
      this.link = this.pool.attach(this);
    }
    this.link.post({ op: 'update', bytes: batch.buffer as ArrayBuffer, length });
    this.giveBackGrant(); // the bytes now count in flight
  }
}

let sharedPool: Sha256WorkerPool | null = null;

/** The process's shared pool, created on first use. */
export function sharedSha256Pool(): Sha256WorkerPool {
  sharedPool ??= new Sha256WorkerPool();
  return sharedPool;
}

/** Terminates the shared pool's workers (tests, an orderly shutdown); a later hash creates a new pool. */
export async function closeSharedSha256Pool(): Promise<void> {
  const pool = sharedPool;
  sharedPool = null;
  await pool?.close();
}

/** The SHA-256 of a whole buffer, off the main thread past INLINE_SHA256_BYTES, fed within the in-flight bound. */
export async function sha256Off(bytes: Uint8Array, pool: Sha256WorkerPool = sharedSha256Pool()): Promise<string> {
  const hasher = new OffThreadSha256(pool);
  try {
    for (let at = 0; at < bytes.length; at += 4 * BATCH_BYTES) {
      await hasher.ready();
      hasher.update(bytes.subarray(at, at + 4 * BATCH_BYTES));
    }
    return await hasher.digest();
  } finally {
    hasher.dispose();
  }
}
