import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { InMemoryRateLimitWindows } from './in-memory-rate-limit-windows.test-util';
import type { SqlRunner } from './rate-limit-windows.repository';
import { RATE_LIMIT_NAME, RateLimitStore } from './rate-limit.store';

const NO_DATABASE = {} as SqlRunner;

function harness() {
  const windows = new InMemoryRateLimitWindows();
  const store = new RateLimitStore(NO_DATABASE, windows);
  /** One call of `key`: 2 per second, a 1.5 s block. */
  const call = (key = 'ip-1', name = RATE_LIMIT_NAME) => store.increment(key, 1_000, 2, 1_500, name);
  return { windows, store, call };
}

describe('RateLimitStore over its counters', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.UTC(2026, 11, 7, 12));
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('counts the calls of one window, blocks past the limit and does not count calls while blocked', async () => {
    const { call } = harness();
    const answers = [await call(), await call(), await call(), await call()];
    expect(answers.map((a) => [a.totalHits, a.isBlocked])).toEqual([
      [1, false],
      [2, false],
      [3, true],
      [3, true],
    ]);
    expect(answers[0]).toMatchObject({ timeToExpire: 1, timeToBlockExpire: 0 });
    expect(answers[2]!.timeToBlockExpire).toBe(2);
  });

  it('starts a fresh window when the block ends, and when an unblocked window runs out', async () => {
    const { windows, call } = harness();
    for (let i = 0; i < 3; i += 1) await call();
    windows.advance(1_000);
    expect((await call()).isBlocked).toBe(true); // the block (1.5 s) outlasts the window (1 s)
    windows.advance(600);
    expect(await call()).toMatchObject({ totalHits: 1, isBlocked: false, timeToBlockExpire: 0 });
    expect((await call()).totalHits).toBe(2);
    windows.advance(1_000);
    expect((await call()).totalHits).toBe(1);
  });

  it('counts keys and limit names apart', async () => {
    const { call } = harness();
    for (let i = 0; i < 3; i += 1) await call('ip-1');
    expect((await call('ip-2')).totalHits).toBe(1);
    expect((await call('ip-1', 'enroll')).totalHits).toBe(1);
    expect((await call('ip-1')).isBlocked).toBe(true);
  });

  it('blocks for the window when the limiter gives no block duration', async () => {
    const { windows, store } = harness();
    const calls = [];
    for (let i = 0; i < 3; i += 1) calls.push(await store.increment('ip-1', 4_000, 2, 0, RATE_LIMIT_NAME));
    expect(calls[2]).toMatchObject({ isBlocked: true, timeToBlockExpire: 4 });
    windows.advance(3_999);
    expect((await store.increment('ip-1', 4_000, 2, 0, RATE_LIMIT_NAME)).isBlocked).toBe(true);
    windows.advance(1);
    expect((await store.increment('ip-1', 4_000, 2, 0, RATE_LIMIT_NAME)).totalHits).toBe(1);
  });

  it('never answers more time than the window or the block can last (another replica counted with a longer rule)', async () => {
    const { windows, store } = harness();
    windows.seed('ip-1', RATE_LIMIT_NAME, {
      hits: 1,
      windowEndsAt: windows.now + 600_000,
      blockedUntil: null,
    });
    expect(await store.increment('ip-1', 1_000, 5, 1_500, RATE_LIMIT_NAME)).toMatchObject({
      totalHits: 2,
      timeToExpire: 1,
    });
    windows.seed('ip-2', RATE_LIMIT_NAME, {
      hits: 9,
      windowEndsAt: windows.now + 600_000,
      blockedUntil: windows.now + 600_000,
    });
    expect(await store.increment('ip-2', 1_000, 5, 1_500, RATE_LIMIT_NAME)).toMatchObject({
      isBlocked: true,
      timeToBlockExpire: 2,
    });
  });

  it('twenty calls at once from one key each get a count of their own', async () => {
    const { store } = harness();
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => store.increment('ip-1', 60_000, 100, 60_000, RATE_LIMIT_NAME)),
    );
    expect(answers.map((a) => a.totalHits).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('prunes ended rows at most every ten minutes, and a failed prune never fails the call', async () => {
    const { windows, call } = harness();
    windows.seed('old', RATE_LIMIT_NAME, { hits: 1, windowEndsAt: windows.now - 7_200_000, blockedUntil: null });
    windows.failPrunes = true;
    expect((await call()).totalHits).toBe(1);
    expect(windows.pruneCalls).toBe(1);
    windows.failPrunes = false;
    vi.setSystemTime(Date.now() + 9 * 60_000);
    await call();
    expect(windows.pruneCalls).toBe(1);
    vi.setSystemTime(Date.now() + 60_000);
    await call();
    expect(windows.pruneCalls).toBe(2);
    await vi.waitFor(() => expect(windows.row('old', RATE_LIMIT_NAME)).toBeUndefined());
  });
});
