import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { lockDataDir } from './data-dir-lock';

/** A PostgreSQL the hub can reach with node-postgres, and how to let it go. */
export type DatabaseEndpoint = ExternalDatabase | EmbeddedDatabase;

interface DatabaseEndpointBase {
  /** Pool size the hub must use: the embedded database serves one session at a time. */
  readonly poolSize: number;
  close(): Promise<void>;
}

export interface ExternalDatabase extends DatabaseEndpointBase {
  readonly kind: 'external';
  /** `postgres://` URL (a secret: it may hold a password). */
  readonly url: string;
}

export interface EmbeddedDatabase extends DatabaseEndpointBase {
  readonly kind: 'embedded';
  /** Directory (mode 0700) holding the Unix socket `.s.PGSQL.<socketPort>`: node-postgres's `host` for a socket. */
  readonly socketDirectory: string;
  /** Not a TCP port: PostgreSQL names its socket file after a port number, and node-postgres follows that. */
  readonly socketPort: number;
}

/** The number in the socket file's name (`.s.PGSQL.5432`), PostgreSQL's convention; nothing listens on TCP. */
const SOCKET_PORT = 5432;
/** sun_path holds 108 bytes on Linux and 104 on macOS, with the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 103;

/**
 * Starts PGlite persisted in `dataDir/pgdata` and serves it through pglite-socket on a Unix domain socket in a
 * directory only this user can enter, so the hub talks to it with TypeORM's ordinary `postgres` driver: one code path
 * for the embedded and the server database.
 *
 * Never TCP: pglite-socket answers every startup with AuthenticationOk, so on a loopback port any local process
 * could read password hashes and the encrypted CA key, rewrite roles, or stall the hub with `pg_sleep`. The socket
 * directory is mode 0700 and the socket 0600; pglite-socket has no authentication, so file permissions are the
 * boundary (docs/threat-model.md, "Embedded database").
 *
 * PGlite is a single session. pglite-socket multiplexes connections onto it, which would interleave one client's
 * transaction with another's statements; the hub therefore uses a pool of exactly one connection here (ADR 0002).
 */
export async function startEmbeddedPostgres(dataDir: string): Promise<EmbeddedDatabase> {
  const root = resolve(dataDir);
  const pgdata = join(root, 'pgdata');
  mkdirSync(pgdata, { recursive: true, mode: 0o700 });
  const releaseLock = lockDataDir(root);
  let db: PGlite | undefined;
  let server: PGLiteSocketServer | undefined;
  let socket: PrivateSocketDirectory | undefined;
  try {
    socket = privateSocketDirectory(root);
    db = await openPglite(pgdata);
    // Two sessions allowed so a closing connection never blocks the next one; the hub's pool opens one at a time.
    server = new PGLiteSocketServer({ db, path: socket.socketPath, maxConnections: 2 });
    await server.start();
    // The directory already keeps other users out; the socket's own mode is the second wall, should the directory's
    // mode ever be widened by hand.
    chmodSync(socket.socketPath, 0o600);
  } catch (err) {
    await server?.stop();
    await db?.close();
    socket?.remove();
    releaseLock();
    throw err;
  }
  let closed = false;
  const openSocket = socket;
  return {
    kind: 'embedded',
    socketDirectory: openSocket.directory,
    socketPort: SOCKET_PORT,
    poolSize: 1,
    async close() {
      if (closed) return;
      closed = true;
      try {
        await server?.stop();
        await db?.close();
      } finally {
        openSocket.remove();
        releaseLock();
      }
    },
  };
}

interface PrivateSocketDirectory {
  readonly directory: string;
  readonly socketPath: string;
  /** Removes the socket file (and the directory when it is a temporary one). */
  remove(): void;
}

/**
 * `dataDir/db-socket`, mode 0700 and owned by this user, or a fresh private directory under the system temporary
 * directory when the data directory's path is too long for a socket address. Called under the data-directory lock,
 * so a socket file already there is a crashed hub's leftover and is removed.
 */
function privateSocketDirectory(root: string): PrivateSocketDirectory {
  const socketName = `.s.PGSQL.${SOCKET_PORT}`;
  const inDataDir = join(root, 'db-socket');
  if (Buffer.byteLength(join(inDataDir, socketName)) > MAX_SOCKET_PATH_BYTES) {
    const directory = mkdtempSync(join(tmpdir(), 'tessera-db-')); // mkdtemp makes it 0700
    return {
      directory,
      socketPath: join(directory, socketName),
      remove: () => rmSync(directory, { recursive: true, force: true }),
    };
  }
  mkdirSync(inDataDir, { mode: 0o700, recursive: true });
  const st = lstatSync(inDataDir);
  if (!st.isDirectory() || (process.getuid && st.uid !== process.getuid())) {
    throw new Error(`${inDataDir} must be a directory owned by the hub's user (found something else): remove it`);
  }
  chmodSync(inDataDir, 0o700);
  const socketPath = join(inDataDir, socketName);
  rmSync(socketPath, { force: true });
  return { directory: inDataDir, socketPath, remove: () => rmSync(socketPath, { force: true }) };
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

export function externalPostgres(url: string, poolSize: number): ExternalDatabase {
  return { kind: 'external', url, poolSize, close: async () => undefined };
}
