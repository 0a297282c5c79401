// Entry point of the thread that runs the embedded database (started by embedded-postgres.ts): opens PGlite on the
// data directory, serves it on the private Unix socket, answers 'ready' (or the error that stopped it), and on
// 'close' stops serving, closes the cluster and answers 'closed'. PGlite executes every statement synchronously
// inside WebAssembly: on this thread, queries no longer stop the hub's event loop (TLS, uploads, HTTP parsing).
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
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

/** Where an empty, initialized cluster is kept: initdb inside WebAssembly takes seconds; copying its files does not. */
function templateDir(): string {
  const packageDir = join(dirname(require.resolve('@electric-sql/pglite')), '..');
  const { version } = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as { version: string };
  // node_modules/.cache is where tools keep caches tied to an install; a new PGlite version gets a new template.
  return join(packageDir, '..', '..', '.cache', 'tessera', `pglite-${version}-empty`);
}

/**
 * PostgreSQL's 128 MB of shared buffers is sized for a server of its own; inside the hub's process PGlite touches all
 * of it. The hub's database holds rows of metadata (updates and models are files), and a page missing from the
 * buffers is one read from the operating system's cache.
 */
const SHARED_BUFFERS = '16MB';

function create(dataDir: string): Promise<PGlite> {
  return PGlite.create({
    dataDir,
    startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${SHARED_BUFFERS}`],
  });
}

/** An empty cluster made by PGlite's initdb in a directory of its own, cleanly shut down: the template's files. */
async function makeTemplate(template: string): Promise<void> {
  const building = `${template}.${process.pid}.${Date.now()}.tmp`;
  mkdirSync(building, { recursive: true, mode: 0o700 });
  try {
    await (await create(building)).close();
    renameSync(building, template);
  } finally {
    // Another hub may have put its template there first (the rename then fails): either is the same empty cluster.
    rmSync(building, { recursive: true, force: true });
  }
}

/**
 * Opens the cluster in `pgdata`; a new one starts as a copy of the files of an empty cluster (made by PGlite's own
 * initdb the first time), the same bytes initdb would write, minus the wait. Copied as files, not loaded through
 * PGlite's `loadDataDir`: unpacking a dump inside WebAssembly grew the database's memory by about 140 MiB, which a
 * WebAssembly memory never gives back.
 */
async function openPglite(pgdata: string): Promise<PGlite> {
  if (existsSync(join(pgdata, 'PG_VERSION'))) return create(pgdata);
  const template = templateDir();
  try {
    if (!existsSync(join(template, 'PG_VERSION'))) await makeTemplate(template);
    cpSync(template, pgdata, { recursive: true });
    chmodSync(pgdata, 0o700);
  } catch {
    // Caching is best effort (a read-only install, for instance): clear what a failed copy left and initialize here.
    rmSync(pgdata, { recursive: true, force: true });
    mkdirSync(pgdata, { recursive: true, mode: 0o700 });
  }
  return create(pgdata);
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
