import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as argon2 from 'argon2';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataSourceOptions, MIGRATIONS } from '../database/data-source';
import { externalPostgres, startEmbeddedPostgres } from '../database/embedded-postgres';
import { Sessions1763801000000 } from '../database/migrations/1763801000000-sessions';
import {
  ADMIN,
  DATABASE_KINDS,
  api,
  createServerDatabase,
  signIn,
  startTestHub,
  type DatabaseKind,
  type TestHub,
} from '../testing/test-hub.test-util';

/** The hub's database while no hub runs on it (the embedded one is opened from the data directory). */
async function withDatabase<T>(
  kind: DatabaseKind,
  dataDir: string,
  url: string | undefined,
  work: (db: DataSource) => Promise<T>,
): Promise<T> {
  const endpoint = kind === 'server' ? externalPostgres(url!, 1) : await startEmbeddedPostgres(dataDir);
  const db = new DataSource(dataSourceOptions(endpoint));
  await db.initialize();
  try {
    return await work(db);
  } finally {
    await db.destroy();
    await endpoint.close();
  }
}

interface AccountRow {
  id: string;
  username: string;
  disabled: boolean;
}

describe.each(DATABASE_KINDS)('usernames that differ only in case, upgraded on the %s database', (kind) => {
  let dataDir: string;
  let server: { url: string; drop(): Promise<void> } | undefined;
  let hub: TestHub;
  const ids = {
    first: '00000000-0000-4000-8000-00000000000a',
    second: '00000000-0000-4000-8000-00000000000b',
    third: '00000000-0000-4000-8000-00000000000c',
  };

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'tessera-case-'));
    server = kind === 'server' ? await createServerDatabase() : undefined;
    const options = { dataDir, ...(server ? { databaseUrl: server.url } : {}) };
    // A hub of this release made the schema (and its first administrator); then back to the previous schema.
    const first = await startTestHub(kind, options);
    await first.stop();
    const hash = await argon2.hash('password of the oldest frank', { type: argon2.argon2id });
    await withDatabase(kind, dataDir, server?.url, async (db) => {
      const previous = MIGRATIONS[MIGRATIONS.indexOf(Sessions1763801000000) - 1]!.name;
      for (let undone = 0; ; undone++) {
        const [last] = await db.query<{ name: string }[]>(`SELECT name FROM migrations ORDER BY id DESC LIMIT 1`);
        if (last!.name === previous) break;
        expect(undone).toBeLessThan(MIGRATIONS.length);
        await db.undoLastMigration({ transaction: 'each' });
      }
      // What the previous release allowed: three accounts whose names differ only in case.
      for (const [id, username, created] of [
        [ids.second, 'frank', '2026-02-01T00:00:00Z'],
        [ids.first, 'Frank', '2026-01-01T00:00:00Z'],
        [ids.third, 'FRANK', '2026-03-01T00:00:00Z'],
      ] as const) {
        await db.query(
          `INSERT INTO "users" ("id", "username", "password_hash", "role", "created_at") VALUES ($1, $2, $3, 'auditor', $4)`,
          [id, username, hash, created],
        );
      }
    });
    hub = await startTestHub(kind, options);
  });

  afterAll(async () => {
    await hub?.dispose();
    await server?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps the oldest under its name, renames and disables the later ones, and records each rename once', async () => {
    const admin = await signIn(hub, ADMIN.username, ADMIN.password);
    const users = (await api(hub, 'GET', '/api/users', { headers: admin })).body as AccountRow[];
    const byId = new Map(users.map((u) => [u.id, u]));
    expect(byId.get(ids.first)).toMatchObject({ username: 'Frank', disabled: false });
    expect(byId.get(ids.second)).toMatchObject({ username: 'frank-renamed-2', disabled: true });
    expect(byId.get(ids.third)).toMatchObject({ username: 'FRANK-renamed-3', disabled: true });

    const audit = await api(hub, 'GET', '/api/audit/events?action=account.renamed&order=asc', { headers: admin });
    const events = (audit.body as { events: { subject: { userId?: string }; details: object }[] }).events;
    expect(events.map((e) => e.subject.userId)).toEqual([ids.second, ids.third]);
    expect(events[0]!.details).toMatchObject({
      from: 'frank',
      to: 'frank-renamed-2',
      disabled: true,
      keptUserId: ids.first,
      reason: 'username-differs-only-in-case',
    });

    // Whatever the case typed, the name is the oldest account's.
    const login = await api(hub, 'POST', '/api/auth/login', {
      json: { username: 'FRANK', password: 'password of the oldest frank' },
    });
    expect(login).toMatchObject({ status: 200, body: { username: 'Frank' } });
  });

  it('records nothing again at the next boot', async () => {
    await hub.stop();
    hub = await startTestHub(kind, { dataDir, ...(server ? { databaseUrl: server.url } : {}) });
    const admin = await signIn(hub, ADMIN.username, ADMIN.password);
    const audit = await api(hub, 'GET', '/api/audit/events?action=account.renamed', { headers: admin });
    expect((audit.body as { events: unknown[] }).events).toHaveLength(2);
  });
});
