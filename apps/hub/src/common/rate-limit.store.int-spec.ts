import { setTimeout as sleep } from 'node:timers/promises';
import { DataSource } from 'typeorm';
import { afterAll, describe, expect, it } from 'vitest';
import { createServerDatabase, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { RateLimitStore } from './rate-limit.store';

let attempt = 0;

/** A sign-in that fails, each time for another name (so the per-account back-off never answers, only the limit). */
async function failedLogin(hub: TestHub): Promise<{ status: number; retryAfter: string | null }> {
  attempt += 1;
  const res = await fetch(`${hub.url}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: `nobody-${attempt}`, password: 'not the password' }),
  });
  await res.arrayBuffer();
  return { status: res.status, retryAfter: res.headers.get('retry-after') };
}

describe('rate limits shared by every replica (issue 18, item 4)', () => {
  const hubs: TestHub[] = [];
  const drops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const h of hubs.reverse()) await h.dispose();
    for (const d of drops) await d();
  });

  it('counts sign-in attempts made at two hubs on one database together', async () => {
    const db = await createServerDatabase();
    drops.push(db.drop);
    const env = { TESSERA_LOGIN_RATE_LIMIT: '3' };
    const first = await startTestHub('server', { databaseUrl: db.url, env });
    hubs.push(first);
    const second = await startTestHub('server', { databaseUrl: db.url, dataDir: first.dataDir, env });
    hubs.push(second);
    const statuses = [
      (await failedLogin(first)).status,
      (await failedLogin(second)).status,
      (await failedLogin(first)).status,
    ];
    expect(statuses).toEqual([401, 401, 401]);
    // Per-process counting would allow three more at the second hub; shared counting refuses the fourth anywhere.
    const fourth = await failedLogin(second);
    expect(fourth.status).toBe(429);
    expect(Number(fourth.retryAfter)).toBeGreaterThan(0);
    expect(Number(fourth.retryAfter)).toBeLessThanOrEqual(60);
    expect((await failedLogin(first)).status).toBe(429);
  });

  for (const kind of ['server', 'embedded'] as const) {
    it(`on the ${kind} database: counts atomically, blocks past the limit, and starts afresh when the block ends`, async () => {
      const hub = await startTestHub(kind);
      hubs.push(hub);
      const store = new RateLimitStore(hub.app.get(DataSource));
      // Twenty calls at once from one key: each sees its own count, none is lost.
      const concurrent = await Promise.all(
        Array.from({ length: 20 }, () => store.increment('k-concurrent', 60_000, 100, 60_000, 'login')),
      );
      expect(concurrent.map((r) => r.totalHits).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      expect(concurrent.every((r) => !r.isBlocked && r.timeToExpire > 0 && r.timeToExpire <= 60)).toBe(true);

      const limited = [];
      for (let i = 0; i < 4; i += 1) limited.push(await store.increment('k-limit', 1_000, 2, 1_500, 'login'));
      expect(limited.map((r) => [r.totalHits, r.isBlocked])).toEqual([
        [1, false],
        [2, false],
        [3, true],
        [3, true], // a call while blocked is refused and not counted
      ]);
      expect(limited[2]!.timeToBlockExpire).toBeGreaterThan(0);
      expect(limited[2]!.timeToBlockExpire).toBeLessThanOrEqual(2);
      // Other keys and other limit names are counted apart.
      expect((await store.increment('k-limit', 1_000, 2, 1_500, 'enroll')).totalHits).toBe(1);
      expect((await store.increment('k-other', 1_000, 2, 1_500, 'login')).totalHits).toBe(1);
      await sleep(1_700);
      const after = await store.increment('k-limit', 1_000, 2, 1_500, 'login');
      expect([after.totalHits, after.isBlocked, after.timeToBlockExpire]).toEqual([1, false, 0]);
      // A window that ran out without a block also starts afresh.
      await sleep(1_100);
      expect((await store.increment('k-other', 1_000, 2, 1_500, 'login')).totalHits).toBe(1);
    });
  }

  it('prunes only rows whose window and block ended over an hour ago', async () => {
    const hub = await startTestHub('embedded');
    hubs.push(hub);
    const db = hub.app.get(DataSource);
    const store = new RateLimitStore(db);
    await store.increment('fresh', 60_000, 5, 60_000, 'login');
    await db.query(
      `INSERT INTO "rate_limit_windows" VALUES
         ('stale', 'login', 2, now() - interval '2 hours', NULL),
         ('blocked-long', 'login', 9, now() - interval '2 hours', now() + interval '1 hour')`,
    );
    expect(await store.prune()).toBe(1);
    const keys = (await db.query<{ key: string }[]>(`SELECT "key" FROM "rate_limit_windows" ORDER BY "key"`)).map(
      (r) => r.key,
    );
    expect(keys).toEqual(['blocked-long', 'fresh']);
  });
});
