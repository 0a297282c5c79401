import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Client } from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres } from './embedded-postgres';

const root = mkdtempSync(join(tmpdir(), 'tessera-embedded-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function query<T>(db: { socketDirectory: string; socketPort: number }, sql: string): Promise<T[]> {
  const client = new Client({ host: db.socketDirectory, port: db.socketPort, user: 'postgres', database: 'postgres' });
  await client.connect();
  try {
    return (await client.query<T & object>(sql)).rows;
  } finally {
    await client.end();
  }
}

async function selectOne(socketDirectory: string, socketPort: number): Promise<number> {
  return (await query<{ one: number }>({ socketDirectory, socketPort }, 'SELECT 1 AS one'))[0]!.one;
}

describe('the embedded database endpoint', () => {
  it('starts a new cluster from the empty template, private, with small shared buffers, and keeps what it stores', async () => {
    const dataDir = join(root, 'fresh');
    mkdirSync(dataDir);
    const first = await startEmbeddedPostgres(dataDir);
    try {
      expect(statSync(join(dataDir, 'pgdata')).mode & 0o777).toBe(0o700);
      expect(await query(first, 'SHOW shared_buffers')).toEqual([{ shared_buffers: '16MB' }]);
      await query(first, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('after restart')");
    } finally {
      await first.close();
    }
    const second = await startEmbeddedPostgres(dataDir);
    try {
      expect(await query(second, 'SELECT v FROM kept')).toEqual([{ v: 'after restart' }]);
    } finally {
      await second.close();
    }
  });

  it("starts a new cluster from a schema's saved template: migrated once, then copied", async () => {
    const key = `test-${randomBytes(6).toString('hex')}`;
    const cache = join(dirname(require.resolve('@electric-sql/pglite')), '..', '..', '..', '.cache', 'tessera');
    try {
      mkdirSync(join(root, 'first'));
      const first = await startEmbeddedPostgres(join(root, 'first'), { schemaKey: key });
      try {
        expect(first.origin).toBe('empty');
        // The "migrations": a table and a row, as the hub's would leave them.
        await query(first, "CREATE TABLE migrated (v text); INSERT INTO migrated VALUES ('schema')");
        expect(await first.saveSchemaTemplate()).toBeNull();
        // Saved once: a second save of the same schema keeps the first copy.
        expect(await first.saveSchemaTemplate()).toBeNull();
        // Written after the save: not in the template.
        await query(first, "INSERT INTO migrated VALUES ('later')");
      } finally {
        await first.close();
      }
      expect(readdirSync(cache).filter((d) => d.includes(key))).toHaveLength(1);
      mkdirSync(join(root, 'second'));
      const second = await startEmbeddedPostgres(join(root, 'second'), { schemaKey: key });
      try {
        expect(second.origin).toBe('schema');
        expect(await query(second, 'SELECT v FROM migrated')).toEqual([{ v: 'schema' }]);
        expect(statSync(join(root, 'second', 'pgdata')).mode & 0o777).toBe(0o700);
      } finally {
        await second.close();
      }
      // Another schema, or none, starts empty.
      mkdirSync(join(root, 'third'));
      const third = await startEmbeddedPostgres(join(root, 'third'), { schemaKey: `${key}-other` });
      try {
        expect(third.origin).toBe('empty');
        expect(await query(third, "SELECT to_regclass('migrated') AS t")).toEqual([{ t: null }]);
      } finally {
        await third.close();
      }
      const again = await startEmbeddedPostgres(join(root, 'first'), { schemaKey: key });
      expect(again.origin).toBe('existing');
      await again.close();
    } finally {
      for (const d of existsSync(cache) ? readdirSync(cache).filter((n) => n.includes(key)) : []) {
        rmSync(join(cache, d), { recursive: true, force: true });
      }
    }
  });

  it('keeps its socket in a private temporary directory when the data directory path is too long for one', async () => {
    // 120 bytes of path: past the 107 a Linux socket address holds.
    const dataDir = join(root, 'd'.repeat(60), 'e'.repeat(60));
    mkdirSync(dataDir, { recursive: true });
    const db = await startEmbeddedPostgres(dataDir);
    try {
      expect(dirname(db.socketDirectory)).toBe(tmpdir());
      expect(statSync(db.socketDirectory).mode & 0o777).toBe(0o700);
      expect(statSync(join(db.socketDirectory, `.s.PGSQL.${db.socketPort}`)).mode & 0o777).toBe(0o600);
      expect(await selectOne(db.socketDirectory, db.socketPort)).toBe(1);
      // A second open of the same directory, even from this process, is refused while the first holds it.
      await expect(startEmbeddedPostgres(dataDir)).rejects.toThrow(`is in use by process ${process.pid}`);
    } finally {
      await db.close();
    }
    expect(existsSync(db.socketDirectory)).toBe(false);
  });

  it('refuses a socket directory that is not its own plain directory', async () => {
    const dataDir = join(root, 'linked');
    mkdirSync(dataDir);
    symlinkSync(tmpdir(), join(dataDir, 'db-socket'));
    await expect(startEmbeddedPostgres(dataDir)).rejects.toThrow(/db-socket must be a directory owned by the hub/);
    // The failed start released the lock: once the link is gone, the database opens.
    rmSync(join(dataDir, 'db-socket'));
    const db = await startEmbeddedPostgres(dataDir);
    await db.close();
    expect(db.socketDirectory).toBe(join(dataDir, 'db-socket'));
  });
});
