import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import type { StudyView } from '../studies/studies.service';
import { ADMIN, DATABASE_KINDS, api, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { REFRESH_COOKIE } from './session-cookie.util';
import { refreshTokenHash } from '../sessions/session-policy.util';
import { SessionWatch } from '../sessions/session-watch.service';

/** One signed-in client: its bearer header and its refresh cookie, as a browser would keep them. */
interface Client {
  bearer: Record<string, string>;
  cookie: string;
  refreshToken: string;
  body: SessionBody;
}

interface SessionBody {
  accessToken: string;
  expiresIn: number;
  username: string;
  role: string;
  sessionExpiresAt: string;
  idleTimeoutSeconds: number;
  passwordChangeRequired: boolean;
}

/** The refresh cookie a response sets: its value and its attributes. */
function refreshCookieSet(res: Response): { value: string; attributes: string[] } | null {
  const line = res.headers.getSetCookie().find((c) => c.startsWith(`${REFRESH_COOKIE}=`));
  if (!line) return null;
  const [pair, ...attributes] = line.split(';').map((p) => p.trim());
  return { value: pair!.slice(REFRESH_COOKIE.length + 1), attributes };
}

async function post(hub: TestHub, path: string, init: { headers?: Record<string, string>; json?: unknown } = {}) {
  return fetch(`${hub.url}${path}`, {
    method: 'POST',
    headers: { ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}), ...init.headers },
    body: init.json !== undefined ? JSON.stringify(init.json) : undefined,
  });
}

async function clientOf(res: Response): Promise<Client> {
  expect(res.status, await res.clone().text()).toBe(200);
  const body = (await res.json()) as SessionBody;
  const cookie = refreshCookieSet(res);
  expect(cookie).not.toBeNull();
  return {
    body,
    bearer: { authorization: `Bearer ${body.accessToken}` },
    refreshToken: cookie!.value,
    cookie: `${REFRESH_COOKIE}=${cookie!.value}`,
  };
}

async function login(hub: TestHub, username: string, password: string): Promise<Client> {
  return clientOf(await post(hub, '/api/auth/login', { json: { username, password } }));
}

async function refresh(hub: TestHub, cookie: string): Promise<Response> {
  return post(hub, '/api/auth/refresh', { headers: { cookie } });
}

async function status(hub: TestHub, path: string, headers: Record<string, string>): Promise<number> {
  return (await api(hub, 'GET', path, { headers })).status;
}

/** Reads a response body to its end; resolves true when the server ended it (false on timeout). */
async function endsWithin(res: Response, ms: number): Promise<boolean> {
  const reader = res.body!.getReader();
  const timeout = new Promise<boolean>((r) => setTimeout(() => r(false), ms));
  const done = (async () => {
    for (;;) if ((await reader.read()).done) return true;
  })();
  const ended = await Promise.race([done, timeout]);
  if (!ended) await reader.cancel();
  return ended;
}

describe.each(DATABASE_KINDS)('sessions on the %s database', (kind) => {
  let hub: TestHub;
  let admin: Client;
  let db: DataSource;
  let study: StudyView;

  async function createUser(username: string, password: string, extra: object = {}): Promise<string> {
    const res = await api(hub, 'POST', '/api/users', {
      headers: admin.bearer,
      json: { username, password, role: 'auditor', ...extra },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return (res.body as { id: string }).id;
  }

  async function openStream(bearer: Record<string, string>): Promise<Response> {
    const res = await fetch(`${hub.url}/api/studies/${study.id}/events`, { headers: bearer });
    expect(res.status).toBe(200);
    return res;
  }

  beforeAll(async () => {
    // The default lifetimes (the test hub otherwise lengthens access tokens for suites that never refresh).
    hub = await startTestHub(kind, { env: { TESSERA_ACCESS_TOKEN_TTL_SECONDS: '300' } });
    db = hub.app.get(DataSource);
    admin = await login(hub, ADMIN.username, ADMIN.password);
    const silo = await api(hub, 'POST', '/api/silos', {
      headers: admin.bearer,
      json: { name: 'North', contact: 'it@example.org' },
    });
    const siloId = (silo.body as { silo: { id: string } }).silo.id;
    study = (
      await api(hub, 'POST', '/api/studies', { headers: admin.bearer, json: { plan: heartDiseasePlan([siloId]) } })
    ).body as StudyView;
  });
  afterAll(() => hub?.dispose());

  it('signs in with an httpOnly, SameSite=Strict refresh cookie that never appears in the body', async () => {
    const res = await post(hub, '/api/auth/login', { json: ADMIN });
    const cookie = refreshCookieSet(res);
    expect(cookie!.attributes).toEqual(expect.arrayContaining(['Path=/api/auth', 'HttpOnly', 'SameSite=Strict']));
    // Plain HTTP here: not Secure. Behind a TLS proxy that says so, Secure.
    expect(cookie!.attributes).not.toContain('Secure');
    const body = (await res.json()) as SessionBody;
    expect(JSON.stringify(body)).not.toContain(cookie!.value);
    expect(body).toMatchObject({ expiresIn: 300, idleTimeoutSeconds: 900, passwordChangeRequired: false });
    const behindProxy = refreshCookieSet(
      await post(hub, '/api/auth/login', { json: ADMIN, headers: { 'x-forwarded-proto': 'https' } }),
    );
    expect(behindProxy!.attributes).toContain('Secure');
  });

  it('rotates the refresh token: a new one each time, the session and its access tokens carry on', async () => {
    const first = await login(hub, ADMIN.username, ADMIN.password);
    const second = await clientOf(await refresh(hub, first.cookie));
    expect(second.refreshToken).not.toBe(first.refreshToken);
    expect(await status(hub, '/api/studies', second.bearer)).toBe(200);
    expect(await status(hub, '/api/studies', first.bearer)).toBe(200);
    const third = await clientOf(await refresh(hub, second.cookie));
    expect(await status(hub, '/api/studies', third.bearer)).toBe(200);
    // Presented again at once (a second tab racing the first): an access token, and no cookie to overwrite.
    const late = await refresh(hub, second.cookie);
    expect(late.status).toBe(200);
    expect(refreshCookieSet(late)).toBeNull();
  });

  it('revokes the whole family when a rotated refresh token is replayed', async () => {
    const first = await login(hub, ADMIN.username, ADMIN.password);
    const second = await clientOf(await refresh(hub, first.cookie));
    // As if the grace window for concurrent tabs had passed.
    await db.query(
      `UPDATE "session_refresh_tokens" SET "rotated_at" = now() - interval '1 minute' WHERE "token_hash" = $1`,
      [refreshTokenHash(first.refreshToken)],
    );
    const replay = await refresh(hub, first.cookie);
    expect(replay.status).toBe(401);
    expect(await replay.json()).toMatchObject({ error: 'UNAUTHENTICATED' });
    // The legitimate holder is out too, at once.
    expect((await refresh(hub, second.cookie)).status).toBe(401);
    expect(await status(hub, '/api/studies', second.bearer)).toBe(401);
    const audit = await api(hub, 'GET', '/api/audit/events?action=auth.session.revoked&limit=1', {
      headers: admin.bearer,
    });
    expect((audit.body as { events: { details: object }[] }).events[0]?.details).toMatchObject({
      reason: 'refresh-token-replayed',
    });
  });

  it('signs out for real: the access token, the refresh token and the live stream all end', async () => {
    const person = await login(hub, ADMIN.username, ADMIN.password);
    const stream = await openStream(person.bearer);
    const out = await post(hub, '/api/auth/logout', { headers: { cookie: person.cookie } });
    expect(out.status).toBe(204);
    expect(refreshCookieSet(out)!.attributes).toEqual(expect.arrayContaining([expect.stringMatching(/^Expires=/)]));
    expect(await status(hub, '/api/studies', person.bearer)).toBe(401);
    expect((await refresh(hub, person.cookie)).status).toBe(401);
    expect(await endsWithin(stream, 5000)).toBe(true);
    // Twice is fine.
    expect((await post(hub, '/api/auth/logout', { headers: { cookie: person.cookie } })).status).toBe(204);
  });

  it('signs out a script that holds only the bearer token', async () => {
    const person = await login(hub, ADMIN.username, ADMIN.password);
    expect((await post(hub, '/api/auth/logout', { headers: person.bearer })).status).toBe(204);
    expect(await status(hub, '/api/studies', person.bearer)).toBe(401);
  });

  it('ends a disabled account’s sessions and open live stream at once; enabling does not revive them', async () => {
    const id = await createUser(`reader-${kind}`, 'a long reader password');
    const reader = await login(hub, `reader-${kind}`, 'a long reader password');
    const stream = await openStream(reader.bearer);
    expect(hub.app.get(SessionWatch).watchedSessions()).toBeGreaterThan(0);
    const disabled = await api(hub, 'PATCH', `/api/users/${id}`, { headers: admin.bearer, json: { disabled: true } });
    expect(disabled.status).toBe(200);
    expect(await status(hub, '/api/studies', reader.bearer)).toBe(401);
    expect(await endsWithin(stream, 5000)).toBe(true);
    expect((await refresh(hub, reader.cookie)).status).toBe(401);

    await api(hub, 'PATCH', `/api/users/${id}`, { headers: admin.bearer, json: { disabled: false } });
    expect(await status(hub, '/api/studies', reader.bearer)).toBe(401);
    expect((await refresh(hub, reader.cookie)).status).toBe(401);
    const again = await login(hub, `reader-${kind}`, 'a long reader password');
    expect(await status(hub, '/api/studies', again.bearer)).toBe(200);
  });

  it('ends the sessions of an account whose role changes', async () => {
    const id = await createUser(`promoted-${kind}`, 'a long promoted password');
    const person = await login(hub, `promoted-${kind}`, 'a long promoted password');
    expect(
      (await api(hub, 'PATCH', `/api/users/${id}`, { headers: admin.bearer, json: { role: 'admin' } })).status,
    ).toBe(200);
    expect(await status(hub, '/api/studies', person.bearer)).toBe(401);
    const again = await login(hub, `promoted-${kind}`, 'a long promoted password');
    expect(again.body.role).toBe('admin');
    expect(await status(hub, '/api/users', again.bearer)).toBe(200);
  });

  it('keeps usernames unique whatever their case, and signs in whatever the case typed', async () => {
    await createUser(`Carol-${kind}`, 'a long password for carol');
    const clash = await api(hub, 'POST', '/api/users', {
      headers: admin.bearer,
      json: { username: `carol-${kind}`.toUpperCase(), password: 'another long password', role: 'admin' },
    });
    expect(clash.status).toBe(409);
    expect(clash.body).toMatchObject({ error: 'USERNAME_TAKEN' });
    expect((clash.body as { message: string }).message).toContain(`as "Carol-${kind}"`);
    const signedIn = await login(hub, `carol-${kind}`, 'a long password for carol');
    expect(signedIn.body.username).toBe(`Carol-${kind}`);
    // The database refuses it too, whoever writes.
    await expect(
      db.query(`INSERT INTO "users" ("username", "password_hash", "role") VALUES ($1, 'x', 'auditor')`, [
        `CAROL-${kind}`,
      ]),
    ).rejects.toThrow(/users_username_lower_unique/);
  });

  it('forces a temporary password to be changed before anything else, then ends the other sessions', async () => {
    const name = `dave-${kind}`;
    const id = await createUser(name, 'temporary password 1', { mustChangePassword: true });
    const listed = (await api(hub, 'GET', '/api/users', { headers: admin.bearer })).body as {
      id: string;
      mustChangePassword: boolean;
    }[];
    expect(listed.find((u) => u.id === id)?.mustChangePassword).toBe(true);

    const first = await login(hub, name, 'temporary password 1');
    expect(first.body.passwordChangeRequired).toBe(true);
    const refused = await api(hub, 'GET', '/api/studies', { headers: first.bearer });
    expect(refused.status).toBe(403);
    expect((refused.body as { message: string }).message).toContain('Change the temporary password first');
    const me = await api(hub, 'GET', '/api/auth/me', { headers: first.bearer });
    expect(me.body).toMatchObject({ username: name, mustChangePassword: true });
    const other = await login(hub, name, 'temporary password 1');

    const wrong = await post(hub, '/api/auth/password', {
      headers: first.bearer,
      json: { currentPassword: 'not it at all', newPassword: 'my own password 22' },
    });
    expect(wrong.status).toBe(400);
    expect(await wrong.json()).toMatchObject({
      error: 'VALIDATION_FAILED',
      details: [expect.stringContaining('currentPassword')],
    });
    const short = await post(hub, '/api/auth/password', {
      headers: first.bearer,
      json: { currentPassword: 'temporary password 1', newPassword: 'short' },
    });
    expect(short.status).toBe(400);
    expect(await short.json()).toMatchObject({ details: [expect.stringContaining('newPassword')] });

    const changed = await clientOf(
      await post(hub, '/api/auth/password', {
        headers: first.bearer,
        json: { currentPassword: 'temporary password 1', newPassword: 'my own password 22' },
      }),
    );
    expect(changed.body.passwordChangeRequired).toBe(false);
    expect(await status(hub, '/api/studies', changed.bearer)).toBe(200);
    // Every earlier session ended, the one that made the change included (it got the new one).
    expect(await status(hub, '/api/auth/me', first.bearer)).toBe(401);
    expect(await status(hub, '/api/auth/me', other.bearer)).toBe(401);
    expect((await refresh(hub, other.cookie)).status).toBe(401);
    expect(
      (await post(hub, '/api/auth/login', { json: { username: name, password: 'temporary password 1' } })).status,
    ).toBe(401);

    // An administrator's reset: the sessions end and the next sign-in is forced to change again.
    const reset = await api(hub, 'POST', `/api/users/${id}/password`, {
      headers: admin.bearer,
      json: { password: 'second temporary 1' },
    });
    expect(reset.status).toBe(200);
    expect(reset.body).toMatchObject({ mustChangePassword: true, liveSessions: 0 });
    expect(await status(hub, '/api/auth/me', changed.bearer)).toBe(401);
    expect((await login(hub, name, 'second temporary 1')).body.passwordChangeRequired).toBe(true);
  });

  it('answers clear errors for bad account changes', async () => {
    const adminId = ((await api(hub, 'GET', '/api/auth/me', { headers: admin.bearer })).body as { id: string }).id;
    const own = await api(hub, 'POST', `/api/users/${adminId}/password`, {
      headers: admin.bearer,
      json: { password: 'a long enough password' },
    });
    expect(own.status).toBe(409);
    const short = await api(hub, 'POST', `/api/users/${adminId}/password`, {
      headers: admin.bearer,
      json: { password: 'short' },
    });
    expect(short.status).toBe(400);
    expect(short.body).toMatchObject({ details: [expect.stringContaining('password')] });
    const unknown = await api(hub, 'POST', '/api/users/00000000-0000-4000-8000-000000000000/password', {
      headers: admin.bearer,
      json: { password: 'a long enough password' },
    });
    expect(unknown.status).toBe(404);
    const badRole = await api(hub, 'PATCH', `/api/users/${adminId}`, { headers: admin.bearer, json: { role: 'root' } });
    expect(badRole.status).toBe(400);
    expect(badRole.body).toMatchObject({ details: [expect.stringContaining('role')] });
  });

  it('lets an administrator end all of someone’s sessions, and lists live sessions and last sign-in', async () => {
    const id = await createUser(`erin-${kind}`, 'a long password for erin');
    const a = await login(hub, `erin-${kind}`, 'a long password for erin');
    await login(hub, `erin-${kind}`, 'a long password for erin');
    const before = (
      (await api(hub, 'GET', '/api/users', { headers: admin.bearer })).body as {
        id: string;
        liveSessions: number;
        lastSignInAt: string | null;
      }[]
    ).find((u) => u.id === id)!;
    expect(before.liveSessions).toBe(2);
    expect(Date.parse(before.lastSignInAt!)).toBeGreaterThan(Date.now() - 60_000);
    const revoked = await api(hub, 'DELETE', `/api/users/${id}/sessions`, { headers: admin.bearer });
    expect(revoked.status).toBe(200);
    expect(await status(hub, '/api/studies', a.bearer)).toBe(401);
    const audit = await api(hub, 'GET', '/api/audit/events?action=account.sessions.revoked&limit=1', {
      headers: admin.bearer,
    });
    expect((audit.body as { events: { details: object }[] }).events[0]?.details).toMatchObject({ revokedSessions: 2 });
  });
});
