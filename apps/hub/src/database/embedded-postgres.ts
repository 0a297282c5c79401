import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

/** A PostgreSQL the hub can reach through an ordinary `postgres://` URL, and how to let it go. */
export interface DatabaseEndpoint {
  readonly kind: 'embedded' | 'external';
  readonly url: string;
  /** Pool size the hub must use: the embedded database serves one session at a time. */
  readonly poolSize: number;
  close(): Promise<void>;
}

/**
 * Starts PGlite persisted in `dataDir/pgdata` and serves it on a loopback port through pglite-socket, so the hub
 * talks to it with TypeORM's ordinary `postgres` driver: one code path for the embedded and the server database.
 *
 * PGlite is a single session. pglite-socket multiplexes connections onto it, which would interleave one client's
 * transaction with another's statements; the hub therefore uses a pool of exactly one connection here (ADR 0002).
 */
export async function startEmbeddedPostgres(dataDir: string): Promise<DatabaseEndpoint> {
  const pgdata = join(dataDir, 'pgdata');
  mkdirSync(pgdata, { recursive: true, mode: 0o700 });
  const releaseLock = lockDataDir(dataDir);
  let db: PGlite | undefined;
  let server: PGLiteSocketServer | undefined;
  try {
    db = await openPglite(pgdata);
    // Two sessions allowed so a closing connection never blocks the next one; the hub's pool opens one at a time.
    server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 2 });
    await server.start();
  } catch (err) {
    await db?.close();
    releaseLock();
    throw err;
  }
  const conn = server.getServerConn(); // "127.0.0.1:PORT"
  let closed = false;
  return {
    kind: 'embedded',
    url: `postgres://postgres@${conn}/postgres`,
    poolSize: 1,
    async close() {
      if (closed) return;
      closed = true;
      try {
        await server?.stop();
        await db?.close();
      } finally {
        releaseLock();
      }
    },
  };
}

/** Where an empty, initialized cluster is cached: initdb inside WebAssembly takes seconds; loading a copy does not. */
function templatePath(): string {
  const packageDir = join(dirname(require.resolve('@electric-sql/pglite')), '..');
  const { version } = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as { version: string };
  // node_modules/.cache is where tools keep caches tied to an install; a new PGlite version gets a new template.
  return join(packageDir, '..', '..', '.cache', 'tessera', `pglite-${version}-empty.tar.gz`);
}

/**
 * Opens the cluster in `pgdata`; a new one starts as a copy of a cached empty cluster (made by PGlite itself with
 * dumpDataDir the first time), which is the same bytes initdb would write, minus the wait.
 */
async function openPglite(pgdata: string): Promise<PGlite> {
  if (existsSync(join(pgdata, 'PG_VERSION'))) return PGlite.create({ dataDir: pgdata });
  const template = templatePath();
  if (existsSync(template)) {
    try {
      return await PGlite.create({ dataDir: pgdata, loadDataDir: new Blob([readFileSync(template)]) });
    } catch {
      // An unreadable cache is only a lost shortcut: clear what the failed load left and initialize normally.
      rmSync(pgdata, { recursive: true, force: true });
      mkdirSync(pgdata, { recursive: true, mode: 0o700 });
    }
  }
  const db = await PGlite.create({ dataDir: pgdata });
  try {
    const dump = await db.dumpDataDir('gzip');
    mkdirSync(dirname(template), { recursive: true });
    const tmp = `${template}.${process.pid}.tmp`;
    writeFileSync(tmp, Buffer.from(await dump.arrayBuffer()));
    renameSync(tmp, template);
  } catch {
    // Caching is best effort (a read-only install, for instance).
  }
  return db;
}

/**
 * PGlite files must be opened by one process at a time: a second hub (or `tessera-hub admin create` while the hub
 * runs) would corrupt them. A lock file holding the owner's pid refuses that; a stale lock (dead pid) is taken over.
 */
function lockDataDir(dataDir: string): () => void {
  const file = join(dataDir, 'pgdata.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx', mode: 0o600 });
      return () => rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(readFileSync(file, 'utf8'));
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
        throw new Error(
          `the embedded database in ${dataDir} is in use by process ${owner}; stop that hub first (or set DATABASE_URL)`,
        );
      }
      rmSync(file, { force: true });
    }
  }
  throw new Error(`could not lock the embedded database in ${dataDir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function externalPostgres(url: string, poolSize: number): DatabaseEndpoint {
  return { kind: 'external', url, poolSize, close: async () => undefined };
}
