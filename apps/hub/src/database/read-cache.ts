import type { DataGeneration, ReadSet } from './data-generation';

interface Entry {
  /** The data version when the computation started. */
  readonly version: number;
  readonly startedAt: number;
  /** The tables the computation's statements named so far (all of them once it settled). */
  readonly read: ReadSet;
  readonly value: Promise<unknown>;
  settled: boolean;
}

/** A computation that starts when the one in flight for the same key settles; every caller until then shares it. */
interface Next {
  readonly value: Promise<unknown>;
}

/**
 * The results the cache has handed out: one object per computation, given unchanged to every caller it serves.
 * Only the cache adds to it; weak, so a result dropped from the cache (and from every answer in progress) goes.
 */
const sharedReads = new WeakSet<object>();

/**
 * Whether `value` is a result of a ReadCache computation, i.e. an object several callers may receive as is. Its
 * serialisation can then be kept with it (common/shared-json.ts): a later write makes the cache compute a new object,
 * never change this one, so the bytes stay those of this value. Callers must treat such a result as read-only,
 * which the cache already requires (every caller shares it).
 */
export function isSharedRead(value: unknown): value is object {
  return typeof value === 'object' && value !== null && sharedReads.has(value);
}

export interface ReadCacheOptions {
  /** Entries kept at most (least recently used first out). */
  readonly maxEntries: number;
  /** A result older than this is computed again even when no table it read changed (views that read the clock). */
  readonly maxAgeMs: number;
  readonly now?: () => number;
}

/**
 * Reuses the result of a read while the data it read cannot have changed. Each computation records the tables its
 * statements name (DataGeneration.recording) and the data version at which it STARTED; its result is served while
 * none of those tables has changed since (and for at most `maxAgeMs`). A caller may also join a computation still
 * in flight under the same rule, checked against the tables it has read so far: what it reads later it reads after
 * the caller arrived.
 *
 * When a caller finds the result outdated while that computation is still running, it does not start another one
 * beside it (on the embedded database's one connection the two would only queue behind each other): it waits for a
 * single next computation that starts when the running one settles, shared by every caller that arrives before
 * then. Each caller thus gets a result computed entirely after it arrived, or one computed from data that had not
 * changed when it arrived, so the cache never serves anything a fresh read made on arrival could not have returned.
 * A computation that fails is not kept. Off (every call computes) when constructed without a generation: with a
 * server database this process cannot see other writers.
 */
export class ReadCache {
  /**
   * What callers got (metrics): a kept result (`hit`), a share of a computation in flight (`joined`) or of the next
   * one (`queued`), or a computation of their own (`computed`).
   */
  readonly outcomes = { hit: 0, joined: 0, queued: 0, computed: 0 };
  /** Computations started: the callers' own plus the next ones that queued callers share (metrics). */
  computations = 0;
  private readonly entries = new Map<string, Entry>();
  private readonly next = new Map<string, Next>();
  private readonly now: () => number;

  constructor(
    private readonly generation: DataGeneration | null,
    private readonly options: ReadCacheOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  get enabled(): boolean {
    return this.generation !== null;
  }

  read<T>(key: string, compute: () => Promise<T>): Promise<T> {
    const generation = this.generation;
    // Always a promise, also when `compute` throws before its first await.
    if (!generation) return (async () => compute())();
    const hit = this.entries.get(key);
    if (hit && !generation.changedSince(hit.version, hit.read) && this.now() - hit.startedAt <= this.options.maxAgeMs) {
      // Most recently used goes last (Map keeps insertion order).
      this.entries.delete(key);
      this.entries.set(key, hit);
      if (hit.settled) this.outcomes.hit += 1;
      else this.outcomes.joined += 1;
      return hit.value as Promise<T>;
    }
    const waiting = this.next.get(key);
    if (waiting) {
      this.outcomes.queued += 1;
      return waiting.value as Promise<T>;
    }
    if (hit && !hit.settled) {
      this.outcomes.queued += 1;
      const after = hit.value.then(
        () => undefined,
        () => undefined,
      );
      const value = after.then(() => {
        this.next.delete(key);
        return this.start(key, generation, compute).value as Promise<T>;
      });
      this.next.set(key, { value });
      return value;
    }
    this.outcomes.computed += 1;
    return this.start(key, generation, compute).value as Promise<T>;
  }

  /** Statements sent by the watched connections (null when the cache is off: nothing watches them). */
  get statements(): { readonly read: number; readonly write: number } | null {
    return this.generation?.statements ?? null;
  }

  private start(key: string, generation: DataGeneration, compute: () => Promise<unknown>): Entry {
    this.computations += 1;
    const read: ReadSet = { tables: new Set(), all: false };
    const entry: Entry = {
      version: generation.value,
      startedAt: this.now(),
      read,
      // Marked before any caller sees the value: the mark is on the promise's own chain, ahead of theirs.
      value: generation.recording(read, async () => compute()).then(markShared),
      settled: false,
    };
    this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.options.maxEntries) {
      this.entries.delete(this.entries.keys().next().value as string);
    }
    entry.value.then(
      () => (entry.settled = true),
      () => {
        entry.settled = true;
        if (this.entries.get(key) === entry) this.entries.delete(key);
      },
    );
    return entry;
  }
}

function markShared<T>(value: T): T {
  if (typeof value === 'object' && value !== null) sharedReads.add(value);
  return value;
}
