// Entry point of the thread that runs the embedded database (started by embedded-postgres.ts): opens PGlite on the
// data directory, serves it on the private Unix socket, answers 'ready' (or the error that stopped it), and on
// 'close' stops serving, closes the cluster and answers 'closed'. PGlite executes every statement synchronously
// inside WebAssembly: on this thread, queries no longer stop the hub's event loop (TLS, uploads, HTTP parsing).
import { randomBytes } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

export interface EmbeddedWorkerData {
  readonly pgdata: string;
  readonly socketPath: string;
  /**
   * Names the hub's schema (its migrations' fingerprint): a new cluster starts from a kept copy of a cluster that
   * had exactly these migrations applied, when there is one (saved by 'save-schema').
   */
  readonly schemaKey?: string;
}

/** How the cluster was opened: one that existed, a new one from the empty template, or from the schema's. */
export type ClusterOrigin = 'existing' | 'empty' | 'schema';

/** What the thread tells its parent. */
export type EmbeddedWorkerMessage =
  | { readonly kind: 'ready'; readonly origin: ClusterOrigin }
  | { readonly kind: 'failed'; readonly message: string }
  | { readonly kind: 'schema-saved'; readonly error: string | null }
  | { readonly kind: 'closed' };

/** What the parent asks: close, or keep the cluster as it stands as the template of the schema named by the key. */
export type EmbeddedWorkerRequest = 'close' | 'save-schema';

/**
 * Where a cluster is kept, in node_modules/.cache (where tools keep caches tied to an install): the empty one (initdb
 * inside WebAssembly takes seconds; copying its files does not), or one with a schema's migrations applied. A new
 * PGlite version gets new templates.
 */
function templateDir(schemaKey?: string): string {
  const packageDir = join(dirname(require.resolve('@electric-sql/pglite')), '..');
  const { version } = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as { version: string };
  const name = `pglite-${version}-${schemaKey === undefined ? 'empty' : `schema-${schemaKey}`}`;
  return join(packageDir, '..', '..', '.cache', 'tessera', name);
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

/** Renames a finished copy into place; another hub that put the same template there first is as good. */
function keepAs(building: string, template: string): void {
  try {
    renameSync(building, template);
  } catch (err) {
    if (!existsSync(join(template, 'PG_VERSION'))) throw err;
  }
}

/** An empty cluster made by PGlite's initdb in a directory of its own, cleanly shut down: the template's files. */
async function makeTemplate(template: string): Promise<void> {
  const building = `${template}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  mkdirSync(building, { recursive: true, mode: 0o700 });
  try {
    await (await create(building)).close();
    keepAs(building, template);
  } finally {
    // Left behind only when the rename failed.
    rmSync(building, { recursive: true, force: true });
  }
}

/**
 * Opens the cluster in `pgdata`; a new one starts as a copy of the files of an empty cluster (made by PGlite's own
 * initdb the first time), the same bytes initdb would write, minus the wait. Copied as files, not loaded through
 * PGlite's `loadDataDir`: unpacking a dump inside WebAssembly grew the database's memory by about 140 MiB, which a
 * WebAssembly memory never gives back.
 */
async function openPglite(
  pgdata: string,
  schemaKey: string | undefined,
): Promise<{ db: PGlite; origin: ClusterOrigin }> {
  if (existsSync(join(pgdata, 'PG_VERSION'))) return { db: await create(pgdata), origin: 'existing' };
  const schema = schemaKey === undefined ? undefined : templateDir(schemaKey);
  const fromSchema = schema !== undefined && existsSync(join(schema, 'PG_VERSION'));
  const template = fromSchema ? schema : templateDir();
  try {
    if (!existsSync(join(template, 'PG_VERSION'))) await makeTemplate(template);
    cpSync(template, pgdata, { recursive: true });
    chmodSync(pgdata, 0o700);
  } catch {
    // Caching is best effort (a read-only install, for instance): clear what a failed copy left and initialize here.
    rmSync(pgdata, { recursive: true, force: true });
    mkdirSync(pgdata, { recursive: true, mode: 0o700 });
    return { db: await create(pgdata), origin: 'empty' };
  }
  return { db: await create(pgdata), origin: fromSchema ? 'schema' : 'empty' };
}

/**
 * Keeps the cluster as it stands as the template of `schemaKey`: asked right after the migrations of a new cluster,
 * while no session writes. A checkpoint first writes every page to its file; a copy of the files then is what a
 * crash at that moment would leave, which PostgreSQL opens by replaying the WAL after the checkpoint (none).
 */
async function saveSchemaTemplate(db: PGlite, pgdata: string, schemaKey: string): Promise<void> {
  const template = templateDir(schemaKey);
  if (existsSync(join(template, 'PG_VERSION'))) return;
  await db.query('CHECKPOINT');
  const building = `${template}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    cpSync(pgdata, building, { recursive: true });
    keepAs(building, template);
  } finally {
    // Left behind only when the rename failed.
    rmSync(building, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('embedded-postgres.worker runs only as a worker thread');
  const { pgdata, socketPath, schemaKey } = workerData as EmbeddedWorkerData;
  const post = (m: EmbeddedWorkerMessage) => port.postMessage(m);
  let db: PGlite | undefined;
  let server: PGLiteSocketServer | undefined;
  let origin: ClusterOrigin;
  try {
    ({ db, origin } = await openPglite(pgdata, schemaKey));
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
  port.on('message', (m: EmbeddedWorkerRequest) => {
    if (m === 'save-schema') {
      const saving =
        schemaKey === undefined
          ? Promise.reject(new Error('no schema key'))
          : saveSchemaTemplate(open.db, pgdata, schemaKey);
      void saving.then(
        () => post({ kind: 'schema-saved', error: null }),
        (err: unknown) => post({ kind: 'schema-saved', error: (err as Error).message }),
      );
      return;
    }
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
  post({ kind: 'ready', origin });
}

void main();
