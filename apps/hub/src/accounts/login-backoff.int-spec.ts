import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, DATABASE_KINDS, api, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { INVALID_CREDENTIALS_MESSAGE } from './accounts.service';
import { accountKeyOf, FREE_LOGIN_FAILURES } from './login-backoff.util';

function login(hub: TestHub, username: string, password: string, forwardedFor: string) {
  return api(hub, 'POST', '/api/auth/login', {
    json: { username, password },
    headers: { 'x-forwarded-for': forwardedFor },
  });
}

/** Ends the pause as the passing of time would: the database's clock is the one that counts. */
async function endPause(hub: TestHub, username: string): Promise<void> {
  await hub.app
    .get(DataSource)
    .query(`UPDATE "login_backoff" SET "locked_until" = now() - interval '1 second' WHERE "account_key" = $1`, [
      accountKeyOf(username),
    ]);
}

describe.each(DATABASE_KINDS)('per-account login back-off on the %s database', (kind) => {
  let hub: TestHub;
  beforeAll(async () => {
    // Every attempt from another client address (a trusted proxy forwards it): the per-address limit never bites,
    // as for a distributed guesser; the per-account back-off must.
    hub = await startTestHub(kind, {
      env: { TESSERA_LOGIN_RATE_LIMIT: '3', TESSERA_TRUSTED_PROXIES: '127.0.0.1,::1' },
    });
  });
  afterAll(() => hub?.dispose());

  it('pauses a username after repeated failures from many addresses; the right password waits too', async () => {
    for (let i = 0; i < FREE_LOGIN_FAILURES; i++) {
      const res = await login(hub, ADMIN.username, `wrong guess ${i}`, `198.51.100.${i + 1}`);
      expect(res).toMatchObject({ status: 401, body: { message: INVALID_CREDENTIALS_MESSAGE } });
    }
    const paused = await login(hub, ADMIN.username, ADMIN.password, '203.0.113.9');
    expect(paused.status).toBe(429);
    expect(paused.body).toMatchObject({ error: 'LOGIN_BACKOFF' });
    expect((paused.body as { message: string }).message).toMatch(
      /paused for it for \d+ more seconds.*even with the correct password/,
    );
    const retryAfter = Number(paused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Another account is not affected.
    expect((await login(hub, 'someone-else', 'wrong', '203.0.113.10')).status).toBe(401);

    await endPause(hub, ADMIN.username);
    expect((await login(hub, ADMIN.username, ADMIN.password, '203.0.113.11')).status).toBe(200);
    // Success ended the series: the next failure is the first again, not an eleventh.
    expect((await login(hub, ADMIN.username, 'wrong again', '203.0.113.12')).status).toBe(401);
    expect((await login(hub, ADMIN.username, ADMIN.password, '203.0.113.13')).status).toBe(200);
  });

  it('gives an unknown username the same back-off, so the answer tells nothing about existence', async () => {
    const ghost = `ghost-${kind}`;
    for (let i = 0; i < FREE_LOGIN_FAILURES; i++) {
      expect((await login(hub, ghost, `guess ${i}`, `192.0.2.${i + 1}`)).status).toBe(401);
    }
    const paused = await login(hub, ghost, 'guess', '192.0.2.200');
    expect(paused.status).toBe(429);
    expect(paused.body).toMatchObject({ error: 'LOGIN_BACKOFF' });
    expect((paused.body as { message: string }).message).toMatch(/even with the correct password/);
  });

  it('grows the pause with every further failure once one has passed', async () => {
    const name = `grower-${kind}`;
    for (let i = 0; i < FREE_LOGIN_FAILURES; i++) await login(hub, name, `g${i}`, `192.0.2.${i + 50}`);
    const first = Number((await login(hub, name, 'x', '192.0.2.99')).headers.get('retry-after'));
    await endPause(hub, name);
    expect((await login(hub, name, 'still wrong', '192.0.2.98')).status).toBe(401);
    const second = Number((await login(hub, name, 'x', '192.0.2.97')).headers.get('retry-after'));
    expect(first).toBeLessThanOrEqual(60);
    expect(second).toBeGreaterThan(60);
    expect(second).toBeLessThanOrEqual(120);
  });

  it('records the pause in the audit trail', async () => {
    const [row] = await hub.app
      .get(DataSource)
      .query<{ n: number }[]>(`SELECT count(*)::int AS n FROM "audit_records" WHERE "action" = 'auth.login.paused'`);
    expect(row!.n).toBeGreaterThanOrEqual(3);
  });
});
