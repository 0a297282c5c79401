import type { DataGeneration } from './data-generation';

interface Entry {
  readonly generation: number;
  readonly startedAt: number;
  readonly value: Promise<unknown>;
}

export interface ReadCacheOptions {
  /** Entries kept at most (least recently used first out). */
  readonly maxEntries: number;
  /** A result older than this is computed again even at the same generation (views that read the clock). */
  readonly maxAgeMs: number;
  readonly now?: () => number;
}

/**
 * Reuses the result of a read while the data it read cannot have changed: each result is labelled with the data
 * generation at which its computation STARTED, and served only while the generation is still that one (and for at
 * most `maxAgeMs`). Requests that arrive while the same read is being computed at the current generation wait for
 * that computation instead of starting another. A computation that fails is not kept.
 *
 * Labelling by the start is what makes it exact: a write that commits while the read runs changes the generation,
 * so the result (which may or may not include it) is never served for the new generation. Off (every call computes)
 * when constructed without a generation: with a server database this process cannot see other writers.
 */
export class ReadCache {
  private readonly entries = new Map<string, Entry>();
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

  async read<T>(key: string, compute: () => Promise<T>): Promise<T> {
    if (!this.generation) return compute();
    const generation = this.generation.value;
    const now = this.now();
    const hit = this.entries.get(key);
    if (hit && hit.generation === generation && now - hit.startedAt <= this.options.maxAgeMs) {
      // Most recently used goes last (Map keeps insertion order).
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit.value as Promise<T>;
    }
    const value = compute();
    const entry: Entry = { generation, startedAt: now, value };
    this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.options.maxEntries) {
      this.entries.delete(this.entries.keys().next().value as string);
    }
    value.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    });
    return value;
  }
}
