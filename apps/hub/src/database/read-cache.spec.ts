import { describe, expect, it } from 'vitest';
import { DataGeneration, StatementWatch } from './data-generation';
import { isSharedRead, ReadCache } from './read-cache';

function setup(options: { maxEntries?: number; maxAgeMs?: number } = {}) {
  const generation = new DataGeneration();
  let clock = 0;
  const cache = new ReadCache(generation, {
    maxEntries: options.maxEntries ?? 10,
    maxAgeMs: options.maxAgeMs ?? 1_000,
    now: () => clock,
  });
  let computed = 0;
  const compute = (value: string) => () => {
    computed += 1;
    return Promise.resolve(`${value}#${computed}`);
  };
  return {
    generation,
    cache,
    compute,
    advance: (ms: number) => (clock += ms),
    computed: () => computed,
  };
}

describe('ReadCache', () => {
  it('reuses a result while the generation stands', async () => {
    const t = setup();
    expect(await t.cache.read('k', t.compute('a'))).toBe('a#1');
    expect(await t.cache.read('k', t.compute('a'))).toBe('a#1');
    expect(t.computed()).toBe(1);
  });

  it('computes again once the generation changed', async () => {
    const t = setup();
    await t.cache.read('k', t.compute('a'));
    t.generation.bump();
    expect(await t.cache.read('k', t.compute('a'))).toBe('a#2');
  });

  it('never serves, at a new generation, a result whose computation started before a write committed', async () => {
    const t = setup();
    let release!: (v: string) => void;
    const slow = t.cache.read('k', () => new Promise<string>((r) => (release = r)));
    t.generation.bump(); // a write commits while the read runs: its result may or may not include it
    release('before-or-during');
    expect(await slow).toBe('before-or-during');
    expect(await t.cache.read('k', t.compute('after'))).toBe('after#1');
  });

  it('joins a computation in flight at the same generation instead of starting another', async () => {
    const t = setup();
    let calls = 0;
    let release!: (v: string) => void;
    const compute = () => {
      calls += 1;
      return new Promise<string>((r) => (release = r));
    };
    const first = t.cache.read('k', compute);
    const second = t.cache.read('k', compute);
    release('shared');
    expect(await Promise.all([first, second])).toEqual(['shared', 'shared']);
    expect(calls).toBe(1);
  });

  it('keeps a result while only tables it did not read change', async () => {
    const generation = new DataGeneration();
    generation.know(['silos', 'rounds']);
    const watch = new StatementWatch(generation);
    const cache = new ReadCache(generation, { maxEntries: 10, maxAgeMs: 1_000, now: () => 0 });
    let computed = 0;
    const silos = () => {
      watch.observe('SELECT * FROM "silos"');
      return Promise.resolve(++computed);
    };
    expect(await cache.read('silos', silos)).toBe(1);
    watch.observe('UPDATE "rounds" SET "status" = $1');
    expect(await cache.read('silos', silos)).toBe(1);
    watch.observe('UPDATE "silos" SET "status" = $1');
    expect(await cache.read('silos', silos)).toBe(2);
    watch.observe('DELETE FROM "rounds"'); // may cascade anywhere
    expect(await cache.read('silos', silos)).toBe(3);
  });

  it('lets a caller join a computation in flight while no table it has read so far changed', async () => {
    const generation = new DataGeneration();
    generation.know(['silos', 'rounds']);
    const watch = new StatementWatch(generation);
    const cache = new ReadCache(generation, { maxEntries: 10, maxAgeMs: 1_000, now: () => 0 });
    let calls = 0;
    let readRounds!: () => void;
    const compute = async () => {
      calls += 1;
      watch.observe('SELECT * FROM silos');
      await new Promise<void>((r) => (readRounds = r));
      watch.observe('SELECT * FROM rounds'); // sent after the second caller arrived: it sees what that caller would
      return `result ${calls}`;
    };
    const first = cache.read('k', compute);
    watch.observe('UPDATE rounds SET status = $1'); // not read yet by the computation in flight
    const second = cache.read('k', compute);
    readRounds();
    expect(await Promise.all([first, second])).toEqual(['result 1', 'result 1']);
    expect(calls).toBe(1);
  });

  it('runs one next computation, after the outdated one in flight, for every caller that arrives meanwhile', async () => {
    const t = setup();
    const started: string[] = [];
    const releases: ((v: string) => void)[] = [];
    const compute = () => {
      started.push(`computation ${started.length + 1}`);
      return new Promise<string>((r) => releases.push(r));
    };
    const first = t.cache.read('k', compute);
    t.generation.bump(); // the result in flight may miss this write: later callers must not get it
    const second = t.cache.read('k', compute);
    t.generation.bump();
    const third = t.cache.read('k', compute);
    await Promise.resolve();
    expect(started).toHaveLength(1); // the next one waits for the connection's current user: the first
    releases[0]!('stale for later callers');
    expect(await first).toBe('stale for later callers');
    await new Promise((r) => setTimeout(r, 0));
    expect(started).toHaveLength(2); // one computation for both callers, started after both arrived
    releases[1]!('fresh');
    expect(await Promise.all([second, third])).toEqual(['fresh', 'fresh']);
    expect(await t.cache.read('k', compute)).toBe('fresh'); // and kept
  });

  it('still runs the next computation when the one in flight fails', async () => {
    const t = setup();
    let fail!: (e: Error) => void;
    const first = t.cache.read('k', () => new Promise<string>((_, reject) => (fail = reject)));
    t.generation.bump();
    const second = t.cache.read('k', t.compute('after'));
    fail(new Error('connection lost'));
    await expect(first).rejects.toThrow('connection lost');
    expect(await second).toBe('after#1');
  });

  it('answers a computation that throws before its first await with a rejected promise, not a throw', async () => {
    const t = setup();
    const failing = () => {
      throw new Error('no such study');
    };
    const answer = t.cache.read('k', failing);
    await expect(answer).rejects.toThrow('no such study');
    const off = new ReadCache(null, { maxEntries: 1, maxAgeMs: 1 });
    await expect(off.read('k', failing as () => Promise<string>)).rejects.toThrow('no such study');
  });

  it('does not keep a failed computation', async () => {
    const t = setup();
    await expect(t.cache.read('k', () => Promise.reject(new Error('not found')))).rejects.toThrow('not found');
    expect(await t.cache.read('k', t.compute('a'))).toBe('a#1');
  });

  it('computes again after maxAgeMs even at the same generation (views that read the clock)', async () => {
    const t = setup({ maxAgeMs: 1_000 });
    await t.cache.read('k', t.compute('a'));
    t.advance(1_000);
    expect(await t.cache.read('k', t.compute('a'))).toBe('a#1');
    t.advance(1);
    expect(await t.cache.read('k', t.compute('a'))).toBe('a#2');
  });

  it('keeps at most maxEntries, dropping the least recently used', async () => {
    const t = setup({ maxEntries: 2 });
    await t.cache.read('a', t.compute('a')); // a#1
    await t.cache.read('b', t.compute('b')); // b#2
    await t.cache.read('a', t.compute('a')); // hit: a is now the most recent
    await t.cache.read('c', t.compute('c')); // c#3 evicts b
    expect(await t.cache.read('a', t.compute('a'))).toBe('a#1');
    expect(await t.cache.read('b', t.compute('b'))).toBe('b#4');
  });

  it('is off without a generation (a server database has writers this process cannot see)', async () => {
    let computed = 0;
    const cache = new ReadCache(null, { maxEntries: 10, maxAgeMs: 1_000 });
    const compute = () => Promise.resolve(++computed);
    expect(cache.enabled).toBe(false);
    await cache.read('k', compute);
    expect(await cache.read('k', compute)).toBe(2);
  });

  it('marks the object it hands out as a shared read, for callers that joined it too, and nothing else', async () => {
    const t = setup();
    let release!: (v: { rows: number[] }) => void;
    const first = t.cache.read('k', () => new Promise<{ rows: number[] }>((r) => (release = r)));
    const joined = t.cache.read('k', () => Promise.resolve({ rows: [] }));
    release({ rows: [1, 2] });
    const [a, b] = await Promise.all([first, joined]);
    expect(a).toBe(b);
    expect(isSharedRead(a)).toBe(true);
    // An equal object the cache did not hand out, and values that cannot be shared by reference.
    expect(isSharedRead({ rows: [1, 2] })).toBe(false);
    expect(isSharedRead(a.rows)).toBe(false);
    expect(isSharedRead(await t.cache.read('s', t.compute('text')))).toBe(false);
    expect(isSharedRead(null)).toBe(false);
  });

  it('hands out a new shared object after a write, and marks nothing when off', async () => {
    const t = setup();
    const compute = () => Promise.resolve({ n: 1 });
    const before = await t.cache.read('k', compute);
    t.generation.bump();
    const after = await t.cache.read('k', compute);
    expect(after).not.toBe(before);
    expect(isSharedRead(after)).toBe(true);

    const off = new ReadCache(null, { maxEntries: 10, maxAgeMs: 1_000 });
    expect(isSharedRead(await off.read('k', compute))).toBe(false);
  });
});
