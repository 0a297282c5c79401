import { MetadataScanner, ModulesContainer, Reflector } from '@nestjs/core';
import { PATH_METADATA } from '@nestjs/common/constants';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INVALID_CREDENTIALS_MESSAGE } from './accounts/accounts.service';
import { ACCESS_METADATA } from './access/access.decorator';
import { ADMIN, DATABASE_KINDS, api, signIn, startTestHub, type TestHub } from './testing/test-hub.test-util';

const AUDITOR = { username: 'audrey', password: 'auditor password 1', role: 'auditor' } as const;

async function userCount(hub: TestHub): Promise<number> {
  const [row] = await hub.app.get(DataSource).query<{ n: number }[]>('SELECT count(*)::int AS n FROM users');
  return row!.n;
}

describe.each(DATABASE_KINDS)('hub foundation on the %s database', (kind) => {
  let hub: TestHub;
  let admin: Record<string, string>;

  beforeAll(async () => {
    hub = await startTestHub(kind);
    admin = await signIn(hub, ADMIN.username, ADMIN.password);
  });
  afterAll(async () => {
    await hub?.dispose();
  });

  it('reports health with the database', async () => {
    const res = await api(hub, 'GET', '/health');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'ok', info: { database: { status: 'up' } } });
  });

  it('signs in the first administrator and tells who they are', async () => {
    const me = await api(hub, 'GET', '/api/auth/me', { headers: admin });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ username: ADMIN.username, role: 'admin' });
  });

  it('answers a wrong password and an unknown user with the same 401 message', async () => {
    const wrong = await api(hub, 'POST', '/api/auth/login', { json: { username: ADMIN.username, password: 'nope' } });
    const unknown = await api(hub, 'POST', '/api/auth/login', { json: { username: 'ghost', password: 'nope' } });
    for (const res of [wrong, unknown]) {
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({ error: 'INVALID_CREDENTIALS', message: INVALID_CREDENTIALS_MESSAGE });
      expect(Object.keys(res.body as object).sort()).toEqual(['correlationId', 'error', 'message']);
    }
  });

  it('refuses malformed JSON with 400 and a correlation id, writing nothing', async () => {
    const before = await userCount(hub);
    const res = await api(hub, 'POST', '/api/users', { headers: admin, raw: '{"username": "x",' });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ message: 'The request body is not valid JSON.' });
    expect((res.body as { correlationId: string }).correlationId).toBe(res.headers.get('x-correlation-id'));
    expect(await userCount(hub)).toBe(before);
  });

  it('refuses an unknown field with 400 naming it, writing nothing', async () => {
    const before = await userCount(hub);
    const res = await api(hub, 'POST', '/api/users', {
      headers: admin,
      json: { username: 'bob', password: 'long enough password', role: 'auditor', isRoot: true },
    });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'VALIDATION_FAILED', details: ['unknown field "isRoot"'] });
    expect(await userCount(hub)).toBe(before);
  });

  it('reports every validation problem at once', async () => {
    const res = await api(hub, 'POST', '/api/users', {
      headers: admin,
      json: { username: 'b', password: 'short', role: 'root' },
    });
    expect(res.status).toBe(400);
    const details = (res.body as { details: string[] }).details;
    expect(details.some((d) => d.includes('username'))).toBe(true);
    expect(details.some((d) => d.includes('password'))).toBe(true);
    expect(details.some((d) => d.includes('role'))).toBe(true);
  });

  it('refuses an oversized body with 413, writing nothing', async () => {
    const before = await userCount(hub);
    const res = await api(hub, 'POST', '/api/users', {
      headers: admin,
      json: { username: 'big', password: 'x'.repeat(2 * 1024 * 1024), role: 'admin' },
    });
    expect(res.status).toBe(413);
    expect(res.body).toMatchObject({ error: 'PAYLOAD_TOO_LARGE' });
    expect(await userCount(hub)).toBe(before);
  });

  it('refuses a missing or forged session token with 401', async () => {
    expect((await api(hub, 'GET', '/api/users')).status).toBe(401);
    const forged = await api(hub, 'GET', '/api/users', { headers: { authorization: 'Bearer abc.def.ghi' } });
    expect(forged.status).toBe(401);
  });

  it('lets an admin create an auditor, and refuses the auditor on admin routes with 403, writing nothing', async () => {
    const created = await api(hub, 'POST', '/api/users', { headers: admin, json: AUDITOR });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ username: AUDITOR.username, role: 'auditor', disabled: false });
    expect(JSON.stringify(created.body)).not.toContain('password');

    const auditor = await signIn(hub, AUDITOR.username, AUDITOR.password);
    expect((await api(hub, 'GET', '/api/auth/me', { headers: auditor })).status).toBe(200);
    const before = await userCount(hub);
    const refused = await api(hub, 'POST', '/api/users', {
      headers: auditor,
      json: { username: 'mallory', password: 'a long password!', role: 'admin' },
    });
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ error: 'FORBIDDEN' });
    expect((await api(hub, 'GET', '/api/users', { headers: auditor })).status).toBe(403);
    expect(await userCount(hub)).toBe(before);
  });

  it('refuses a duplicate username with 409', async () => {
    const res = await api(hub, 'POST', '/api/users', {
      headers: admin,
      json: { username: ADMIN.username, password: 'another long password', role: 'auditor' },
    });
    expect(res.status).toBe(409);
  });

  it('ends a disabled account’s session at once', async () => {
    const user = { username: 'temp-admin', password: 'temporary password', role: 'admin' };
    const created = (await api(hub, 'POST', '/api/users', { headers: admin, json: user })).body as { id: string };
    const session = await signIn(hub, user.username, user.password);
    expect((await api(hub, 'GET', '/api/users', { headers: session })).status).toBe(200);
    const disabled = await api(hub, 'PATCH', `/api/users/${created.id}`, { headers: admin, json: { disabled: true } });
    expect(disabled.status).toBe(200);
    expect((await api(hub, 'GET', '/api/users', { headers: session })).status).toBe(401);
    const login = await api(hub, 'POST', '/api/auth/login', {
      json: { username: user.username, password: user.password },
    });
    expect(login.status).toBe(401);
  });

  it('serves security headers, metrics and the OpenAPI document', async () => {
    const health = await api(hub, 'GET', '/health');
    expect(health.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(health.headers.get('x-content-type-options')).toBe('nosniff');
    expect(health.headers.get('x-powered-by')).toBeNull();
    const metrics = await api(hub, 'GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(String(metrics.body)).toContain('tessera_http_request_duration_seconds_bucket');
    const openapi = await api(hub, 'GET', '/api/docs/openapi.json');
    expect(openapi.status).toBe(200);
    expect(Object.keys((openapi.body as { paths: object }).paths)).toEqual(
      expect.arrayContaining(['/api/auth/login', '/api/users', '/health']),
    );
  });

  it('declares access on every route', () => {
    const modules = hub.app.get(ModulesContainer);
    const reflector = hub.app.get(Reflector);
    const scanner = new MetadataScanner();
    const undeclared: string[] = [];
    let routes = 0;
    const controllers = [...modules.values()].flatMap((m) => [...m.controllers.values()]);
    for (const wrapper of controllers) {
      const instance = wrapper.instance as object | undefined;
      if (!instance) continue;
      const proto = Object.getPrototypeOf(instance) as Record<string, unknown>;
      for (const name of scanner.getAllMethodNames(proto)) {
        const handler = proto[name] as (...args: unknown[]) => unknown;
        if (Reflect.getMetadata(PATH_METADATA, handler) === undefined) continue;
        routes++;
        const access = reflector.getAllAndOverride<string[] | undefined>(ACCESS_METADATA, [
          handler,
          instance.constructor,
        ]);
        if (!access?.length) undeclared.push(`${instance.constructor.name}.${name}`);
      }
    }
    expect(routes).toBeGreaterThan(5);
    expect(undeclared).toEqual([]);
  });
});

describe('login rate limit', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startTestHub('embedded', { env: { TESSERA_LOGIN_RATE_LIMIT: '3' } });
  });
  afterAll(async () => {
    await hub?.dispose();
  });

  it('answers 429 once a client exceeds the attempts allowed per minute', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      statuses.push((await api(hub, 'POST', '/api/auth/login', { json: { username: 'x', password: 'y' } })).status);
    }
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
  });
});

describe('embedded database persistence', () => {
  it('finds its accounts again after a restart on the same data directory', async () => {
    const first = await startTestHub('embedded');
    const admin = await signIn(first, ADMIN.username, ADMIN.password);
    const created = await api(first, 'POST', '/api/users', {
      headers: admin,
      json: { username: 'persisted', password: 'survives restarts', role: 'auditor' },
    });
    expect(created.status).toBe(201);
    await first.stop();

    const second = await startTestHub('embedded', { dataDir: first.dataDir });
    try {
      await signIn(second, 'persisted', 'survives restarts');
      const users = await api(second, 'GET', '/api/users', {
        headers: await signIn(second, ADMIN.username, ADMIN.password),
      });
      expect((users.body as { username: string }[]).map((u) => u.username)).toEqual([ADMIN.username, 'persisted']);
    } finally {
      await second.dispose();
    }
  });
});
