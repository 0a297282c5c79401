import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { lockDataDir } from './data-dir-lock';
import type {
  ClusterOrigin,
  EmbeddedWorkerData,
  EmbeddedWorkerMessage,
  EmbeddedWorkerRequest,
} from './embedded-postgres.worker';

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
  /** Resolves, with the reason, only if the database's thread ends while the hub runs: the hub must then exit. */
  readonly lost: Promise<Error>;
  /** An existing cluster, a new one from the empty template, or a new one from the template of `schemaKey`. */
  readonly origin: ClusterOrigin;
  /**
   * Keeps the cluster as it stands as the template of the schema named when it started (startEmbeddedPostgres's
   * `schemaKey`): call right after migrating a new cluster, before anything else writes. Best effort: resolves with
   * the reason it could not, or null.
   */
  saveSchemaTemplate(): Promise<string | null>;
}

/** The number in the socket file's name (`.s.PGSQL.5432`), PostgreSQL's convention; nothing listens on TCP. */
const SOCKET_PORT = 5432;
/** sun_path holds 108 bytes on Linux and 104 on macOS, with the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 103;
/** How long a closing database thread may take to flush and close the cluster before it is ended. */
const CLOSE_TIMEOUT_MS = 10_000;

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
 * PGlite runs on a thread of its own (embedded-postgres.worker.ts): its WebAssembly executes each statement
 * synchronously, and on the hub's main thread every query would stall TLS, uploads and every other request.
 */
export async function startEmbeddedPostgres(
  dataDir: string,
  options: { schemaKey?: string } = {},
): Promise<EmbeddedDatabase> {
  const root = resolve(dataDir);
  const pgdata = join(root, 'pgdata');
  mkdirSync(pgdata, { recursive: true, mode: 0o700 });
  const releaseLock = lockDataDir(root);
  let socket: PrivateSocketDirectory | undefined;
  let thread: DatabaseThread | undefined;
  try {
    socket = privateSocketDirectory(root);
    thread = await startDatabaseThread({
      pgdata,
      socketPath: socket.socketPath,
      ...(options.schemaKey === undefined ? {} : { schemaKey: options.schemaKey }),
    });
  } catch (err) {
    socket?.remove();
    releaseLock();
    throw err;
  }
  let closed = false;
  const openSocket = socket;
  const openThread = thread;
  return {
    kind: 'embedded',
    socketDirectory: openSocket.directory,
    socketPort: SOCKET_PORT,
    poolSize: 1,
    lost: openThread.lost,
    origin: openThread.origin,
    saveSchemaTemplate: () => openThread.saveSchemaTemplate(),
    async close() {
      if (closed) return;
      closed = true;
      try {
        await openThread.close();
      } finally {
        openSocket.remove();
        releaseLock();
      }
    },
  };
}

/** The compiled thread script: beside this module in a build, or in the hub's dist/ when tests run the sources. */
function workerScript(): string {
  const name = 'embedded-postgres.worker.js';
  for (const candidate of [join(__dirname, name), join(__dirname, '..', '..', 'dist', 'database', name)]) {
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`${name} not found beside ${__dirname} or in the hub's dist/: build the hub first`);
}

interface DatabaseThread {
  /** Resolves with the reason if the thread ends without being asked to (the hub cannot go on without it). */
  readonly lost: Promise<Error>;
  readonly origin: ClusterOrigin;
  saveSchemaTemplate(): Promise<string | null>;
  close(): Promise<void>;
}

/** Starts the database thread and waits until it serves the socket; rejects with the thread's own error. */
async function startDatabaseThread(data: EmbeddedWorkerData): Promise<DatabaseThread> {
  const worker = new Worker(workerScript(), { workerData: data });
  let closing = false;
  let reportLoss: (err: Error) => void = () => undefined;
  const lost = new Promise<Error>((done) => (reportLoss = done));
  const exited = new Promise<number>((done) => worker.once('exit', done));
  const origin = await new Promise<ClusterOrigin>((ready, fail) => {
    const onMessage = (m: EmbeddedWorkerMessage) => {
      if (m.kind === 'ready') ready(m.origin);
      if (m.kind === 'failed') fail(new Error(`the embedded database could not open ${data.pgdata}: ${m.message}`));
    };
    worker.on('message', onMessage);
    worker.once('error', fail);
    void exited.then((code) =>
      fail(new Error(`the embedded database thread exited (code ${code}) before it was ready`)),
    );
  }).catch(async (err: unknown) => {
    await worker.terminate();
    throw err;
  });
  worker.on('error', (err) => reportLoss(new Error(`the embedded database thread failed: ${err.message}`)));
  void exited.then((code) => {
    if (!closing) reportLoss(new Error(`the embedded database thread exited unexpectedly (code ${code})`));
  });
  const ask = (request: EmbeddedWorkerRequest) => worker.postMessage(request);
  return {
    lost,
    origin,
    saveSchemaTemplate: () =>
      new Promise<string | null>((done) => {
        const onMessage = (m: EmbeddedWorkerMessage) => {
          if (m.kind !== 'schema-saved') return;
          worker.off('message', onMessage);
          done(m.error);
        };
        worker.on('message', onMessage);
        ask('save-schema');
      }),
    async close() {
      closing = true;
      const closedCleanly = new Promise<void>((done) =>
        worker.on('message', (m: EmbeddedWorkerMessage) => m.kind === 'closed' && done()),
      );
      ask('close');
      // The cluster flushes and closes on its thread; a thread that does not answer within the bound is ended.
      await Promise.race([closedCleanly, exited, new Promise((r) => setTimeout(r, CLOSE_TIMEOUT_MS).unref())]);
      await worker.terminate();
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

export function externalPostgres(url: string, poolSize: number): ExternalDatabase {
  return { kind: 'external', url, poolSize, close: () => Promise.resolve() };
}
