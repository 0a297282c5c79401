import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Client } from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres } from './embedded-postgres';

const root = mkdtempSync(join(tmpdir(), 'tessera-embedded-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function selectOne(socketDirectory: string, socketPort: number): Promise<number> {
  const client = new Client({ host: socketDirectory, port: socketPort, user: 'postgres', database: 'postgres' });
  await client.connect();
  try {
    const { rows } = await client.query<{ one: number }>('SELECT 1 AS one');
    return rows[0]!.one;
  } finally {
    await client.end();
  }
}

describe('the embedded database endpoint', () => {
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
