// Entry point of the thread that runs the embedded database (started by embedded-postgres.ts): opens PGlite on the
// data directory, serves it on the private Unix socket, answers 'ready' (or the error that stopped it), and on
// 'close' stops serving, closes the cluster and answers 'closed'. PGlite executes every statement synchronously
// inside WebAssembly: on this thread, queries no longer stop the hub's event loop (TLS, uploads, HTTP parsing).
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

export interface EmbeddedWorkerData {
  readonly pgdata: string;
  readonly socketPath: string;
}

/** What the thread tells its parent. */
export type EmbeddedWorkerMessage =
  { readonly kind: 'ready' } | { readonly kind: 'failed'; readonly message: string } | { readonly kind: 'closed' };

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
    const tmp = `${template}.${process.pid}.${Date.now()}.tmp`;
    writeFileSync(tmp, Buffer.from(await dump.arrayBuffer()));
    renameSync(tmp, template);
  } catch {
    // Caching is best effort (a read-only install, for instance).
  }
  return db;
}

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('embedded-postgres.worker runs only as a worker thread');
  const { pgdata, socketPath } = workerData as EmbeddedWorkerData;
  const post = (m: EmbeddedWorkerMessage) => port.postMessage(m);
  let db: PGlite | undefined;
  let server: PGLiteSocketServer | undefined;
  try {
    db = await openPglite(pgdata);
    // Two sessions allowed so a closing connection never blocks the next one; the hub's pool opens one at a time.
    server = new PGLiteSocketServer({ db, path: socketPath, maxConnections: 2 });
    await server.start();
    // The directory already keeps other users out; the socket's own mode is the second wall, should the directory's
    // mode ever be widened by hand.
    chmodSync(socketPath, 0o600);
  } catch (err) {
    await server?.stop().catch(() => undefined);
    await db?.close().catch(() => undefined);
    post({ kind: 'failed', message: (err as Error).message });
    return;
  }
  const open = { db, server };
  port.on('message', (m: unknown) => {
    if (m !== 'close') return;
    void (async () => {
      try {
        await open.server.stop();
      } finally {
        await open.db.close();
        post({ kind: 'closed' });
        port.close();
      }
    })();
  });
  post({ kind: 'ready' });
}

void main();
