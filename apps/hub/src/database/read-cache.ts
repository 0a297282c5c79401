import { AsyncLocalStorage } from 'node:async_hooks';
import type { DataGeneration } from './data-generation';

/**
 * A person's console read (ConsoleViewInterceptor): it may be served a result up to `stalenessMs` old although
 * writes committed since, provided the result includes every write of that person (read-your-writes): its
 * computation started at or after `minGeneration`, the generation their last write left.
 */
export interface ConsoleView {
  readonly minGeneration: number;
  readonly stalenessMs: number;
}

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
  private readonly views = new AsyncLocalStorage<ConsoleView>();

  constructor(
    private readonly generation: DataGeneration | null,
    private readonly options: ReadCacheOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  get enabled(): boolean {
    return this.generation !== null;
  }

  /** The current data generation (0 when the cache is off). */
  get currentGeneration(): number {
    return this.generation?.value ?? 0;
  }

  /** Runs `work` as a person's console read: its `read`s may be served within `view`'s staleness (see ConsoleView). */
  asView<T>(view: ConsoleView, work: () => T): T {
    return this.views.run(view, work);
  }

  async read<T>(key: string, compute: () => Promise<T>): Promise<T> {
    if (!this.generation) return compute();
    const generation = this.generation.value;
    const now = this.now();
    const hit = this.entries.get(key);
    const view = this.views.getStore();
    const exact = hit !== undefined && hit.generation === generation && now - hit.startedAt <= this.options.maxAgeMs;
    // Other people's and agents' writes may show up to `stalenessMs` late in a console view, never the viewer's own:
    // under a round's uploads (a write every few milliseconds) a view is then computed at most once per interval.
    const recentEnough =
      view !== undefined &&
      hit !== undefined &&
      hit.generation >= view.minGeneration &&
      now - hit.startedAt <= Math.min(view.stalenessMs, this.options.maxAgeMs);
    if (hit && (exact || recentEnough)) {
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
