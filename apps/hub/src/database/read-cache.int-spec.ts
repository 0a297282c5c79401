import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, api, DATABASE_KINDS, signIn, startTestHub, type TestHub } from '../testing/test-hub.test-util';

interface SiloRow {
  id: string;
  status: string;
  suspendedReason: string | null;
}
interface AuditPage {
  events: { action: string; subject?: string | null }[];
}

interface Conditional {
  status: number;
  etag: string | undefined;
  body: string;
}

/** A GET by node:http: fetch adds `cache-control: no-cache` to a request with If-None-Match, which defeats it. */
function conditionalGet(url: string, headers: Record<string, string>): Promise<Conditional> {
  return new Promise((done, fail) => {
    const req = request(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => done({ status: res.statusCode ?? 0, etag: res.headers.etag, body }));
    });
    req.on('error', fail);
    req.end();
  });
}

/**
 * On the embedded database the hub reuses console reads until a write commits (ReadCache). Whatever it reuses, a
 * change must show on the very next read: these read a view repeatedly (so it is cached), change it, and read again.
 * They run on the server database too, where nothing is reused, as the reference behaviour.
 */
describe.each(DATABASE_KINDS)('reads after writes (%s database)', (kind) => {
  let hub: TestHub;
  let admin: Record<string, string>;

  beforeAll(async () => {
    hub = await startTestHub(kind);
    admin = await signIn(hub, ADMIN.username, ADMIN.password);
  });
  afterAll(() => hub.dispose());

  async function read<T>(path: string, headers = admin): Promise<T> {
    const res = await api(hub, 'GET', path, { headers });
    expect(res.status, `${path}: ${JSON.stringify(res.body)}`).toBe(200);
    return res.body as T;
  }

  it('shows a suspension in the silo list, the silo and the audit trail on the next read', async () => {
    const created = await api(hub, 'POST', '/api/silos', {
      headers: admin,
      json: { name: 'Read After Write', contact: 'it@example.org' },
    });
    expect(created.status).toBe(201);
    const id = (created.body as { silo: { id: string } }).silo.id;
    for (let i = 0; i < 3; i += 1) {
      expect((await read<SiloRow[]>('/api/silos')).find((s) => s.id === id)?.status).not.toBe('suspended');
      expect((await read<SiloRow>(`/api/silos/${id}`)).status).not.toBe('suspended');
      await read<AuditPage>('/api/audit/events?limit=5');
    }

    const suspended = await api(hub, 'POST', `/api/silos/${id}/suspend`, {
      headers: admin,
      json: { reason: 'checking reads after writes' },
    });
    expect(suspended.status).toBe(200);

    const listed = (await read<SiloRow[]>('/api/silos')).find((s) => s.id === id);
    expect(listed).toMatchObject({ status: 'suspended', suspendedReason: 'checking reads after writes' });
    expect(await read<SiloRow>(`/api/silos/${id}`)).toMatchObject({ status: 'suspended' });
    expect((await read<AuditPage>('/api/audit/events?limit=5')).events[0]?.action).toBe('silo.suspended');
  });

  it('refuses a disabled account on its next request, and serves it again once re-enabled and signed in', async () => {
    const password = 'another long passphrase 1';
    const created = await api(hub, 'POST', '/api/users', {
      headers: admin,
      json: { username: 'reader', password, role: 'auditor' },
    });
    expect(created.status).toBe(201);
    const userId = (created.body as { id: string }).id;
    const auditor = await signIn(hub, 'reader', password);
    for (let i = 0; i < 3; i += 1) await read('/api/studies', auditor);

    expect((await api(hub, 'PATCH', `/api/users/${userId}`, { headers: admin, json: { disabled: true } })).status).toBe(
      200,
    );
    expect((await api(hub, 'GET', '/api/studies', { headers: auditor })).status).toBe(401);

    expect(
      (await api(hub, 'PATCH', `/api/users/${userId}`, { headers: admin, json: { disabled: false } })).status,
    ).toBe(200);
    // Disabling revoked the session for good (ADR 0010); enabling lets the person sign in again.
    expect((await api(hub, 'GET', '/api/studies', { headers: auditor })).status).toBe(401);
    const again = await signIn(hub, 'reader', password);
    expect((await api(hub, 'GET', '/api/studies', { headers: again })).status).toBe(200);
  });

  it('counts how reads were served and the statements sent, on the embedded database only', async () => {
    const counter = async (name: string) => {
      const text = String((await api(hub, 'GET', '/metrics')).body);
      const line = text.split('\n').find((l) => l.startsWith(name));
      return line === undefined ? null : Number(line.slice(name.length).trim());
    };
    const hits = 'tessera_read_cache_requests_total{outcome="hit"}';
    const before = await counter(hits);
    for (let i = 0; i < 3; i += 1) await read('/api/silos');
    const after = await counter(hits);
    if (kind === 'embedded') {
      expect(after! - before!).toBeGreaterThanOrEqual(2); // the first read may compute; the others are kept
      expect(await counter('tessera_database_statements_total{kind="read"}')).toBeGreaterThan(0);
    } else {
      expect(after).toBeNull(); // nothing is cached on a server database: no such counter
    }
  });

  it('answers a repeated read with 304 until a write changes it, and never to a caller the guard refuses', async () => {
    const page = `${hub.url}/api/audit/events?limit=5`;
    const first = await conditionalGet(page, admin);
    const again = await conditionalGet(page, admin);
    expect(first.status).toBe(200);
    expect(first.etag).toMatch(/^W\/"/);
    expect([again.etag, again.body]).toEqual([first.etag, first.body]);
    const unchanged = await conditionalGet(page, { ...admin, 'if-none-match': first.etag! });
    expect([unchanged.status, unchanged.body]).toEqual([304, '']);

    // Another person with the same view gets the same bytes; no credentials, or a revoked session, get no 304.
    const password = 'a third long passphrase 1';
    const created = await api(hub, 'POST', '/api/users', {
      headers: admin,
      json: { username: 'etag-reader', password, role: 'auditor' },
    });
    expect(created.status).toBe(201);
    const auditor = await signIn(hub, 'etag-reader', password);
    const seen = await conditionalGet(page, auditor);
    expect(seen.status).toBe(200);
    const byAuditor = await conditionalGet(page, { ...auditor, 'if-none-match': seen.etag! });
    expect(byAuditor.status).toBe(304);
    expect((await conditionalGet(page, { 'if-none-match': seen.etag! })).status).toBe(401);
    const userId = (created.body as { id: string }).id;
    expect((await api(hub, 'PATCH', `/api/users/${userId}`, { headers: admin, json: { disabled: true } })).status).toBe(
      200,
    );
    expect((await conditionalGet(page, { ...auditor, 'if-none-match': seen.etag! })).status).toBe(401);

    // A write (a suspension, recorded in the trail) gives the page new bytes and a new ETag.
    const silo = await api(hub, 'POST', '/api/silos', {
      headers: admin,
      json: { name: 'Conditional Reads', contact: 'it@example.org' },
    });
    const siloId = (silo.body as { silo: { id: string } }).silo.id;
    const before = await conditionalGet(page, admin);
    expect(
      (await api(hub, 'POST', `/api/silos/${siloId}/suspend`, { headers: admin, json: { reason: 'etag check' } }))
        .status,
    ).toBe(200);
    const changed = await conditionalGet(page, { ...admin, 'if-none-match': before.etag! });
    expect(changed.status).toBe(200);
    expect(changed.etag).not.toBe(before.etag);
    expect((JSON.parse(changed.body) as AuditPage).events[0]?.action).toBe('silo.suspended');
    expect((await conditionalGet(page, { ...admin, 'if-none-match': changed.etag! })).status).toBe(304);
  });
});
