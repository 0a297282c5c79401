import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REFRESH_COOKIE } from '../auth/session-cookie.util';
import { ADMIN, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { refreshTokenHash } from './session-policy.util';
import { SessionsService } from './sessions.service';

/** Resolves once `n` backends of this database wait for a lock (polled; the test has no timing of its own). */
async function waitingForLocks(db: DataSource, n: number): Promise<void> {
  for (;;) {
    const [row] = await db.query<{ n: number }[]>(
      `SELECT count(*)::int AS "n" FROM pg_stat_activity
        WHERE "datname" = current_database() AND "wait_event_type" = 'Lock'`,
    );
    if (row!.n >= n) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

// The server only: the embedded database runs one transaction at a time on its single connection, so two refreshes
// never overlap there.
describe('two refreshes with one refresh token on the PostgreSQL server', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startTestHub('server');
  });
  afterAll(() => hub?.dispose());

  it('issues exactly one successor: the refresh that waited sees the token rotated by the first', async () => {
    const res = await fetch(`${hub.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(ADMIN),
    });
    expect(res.status).toBe(200);
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith(`${REFRESH_COOKIE}=`))!;
    const token = cookie.split(';')[0]!.slice(REFRESH_COOKIE.length + 1);
    const db = hub.app.get(DataSource);
    const sessions = hub.app.get(SessionsService);
    const [{ session_id: sessionId }] = await db.query<[{ session_id: string }]>(
      `SELECT "session_id" FROM "session_refresh_tokens" WHERE "token_hash" = $1`,
      [refreshTokenHash(token)],
    );

    // Hold the session's row so that both refreshes have read the token before either may decide.
    const holder = db.createQueryRunner();
    await holder.connect();
    await holder.startTransaction();
    await holder.query(`SELECT 1 FROM "sessions" WHERE "id" = $1 FOR UPDATE`, [sessionId]);
    const both = Promise.all([sessions.refresh(token), sessions.refresh(token)]);
    try {
      await waitingForLocks(db, 2);
    } finally {
      await holder.commitTransaction();
      await holder.release();
    }

    const issued = await both;
    expect(issued.map((i) => i.refreshToken !== null).sort()).toEqual([false, true]);
    const tokens = await db.query<{ rotated_at: Date | null }[]>(
      `SELECT "rotated_at" FROM "session_refresh_tokens" WHERE "session_id" = $1`,
      [sessionId],
    );
    expect(tokens.filter((t) => t.rotated_at === null)).toHaveLength(1);
    expect(tokens).toHaveLength(2);
  });
});
