import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { loadHubConfig } from '../config/hub-config';
import { startHub, type RunningHub } from '../hub';

export type DatabaseKind = 'server' | 'embedded';
/** Every integration suite runs on both databases: the PostgreSQL server and the embedded PGlite. */
export const DATABASE_KINDS: DatabaseKind[] = ['server', 'embedded'];

/** The real PostgreSQL server the integration tests use (CI creates a fresh database for each run). */
export const TEST_SERVER_URL = process.env.TESSERA_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export const ADMIN = { username: 'admin', password: 'correct horse battery staple' } as const;

/** A fresh database on the server, dropped by the returned function. */
export async function createServerDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `tessera_t_${randomBytes(6).toString('hex')}`;
  const admin = new Client({ connectionString: TEST_SERVER_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(TEST_SERVER_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new Client({ connectionString: TEST_SERVER_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export interface TestHub extends RunningHub {
  readonly dataDir: string;
  /** Stops the hub and removes its database and data directory. */
  dispose(): Promise<void>;
  /** Stops the hub but keeps its data, to restart on it. */
  stop(): Promise<void>;
}

export interface TestHubOptions {
  env?: Record<string, string>;
  /** Reuse an existing data directory (restart tests). */
  dataDir?: string;
  databaseUrl?: string;
}

/** A real hub on loopback with a random port, on the chosen database, with a first administrator. */
export async function startTestHub(kind: DatabaseKind, options: TestHubOptions = {}): Promise<TestHub> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'tessera-hub-'));
  const server = kind === 'server' && !options.databaseUrl ? await createServerDatabase() : undefined;
  const databaseUrl = options.databaseUrl ?? server?.url;
  const config = loadHubConfig({
    TESSERA_HOST: '127.0.0.1',
    TESSERA_PORT: '0',
    TESSERA_SILO_PORT: '0',
    TESSERA_ENROLL_PORT: '0',
    TESSERA_DATA_DIR: dataDir,
    TESSERA_LOG_LEVEL: process.env.TESSERA_TEST_LOG_LEVEL ?? 'silent',
    TESSERA_ADMIN_USERNAME: ADMIN.username,
    TESSERA_ADMIN_PASSWORD: ADMIN.password,
    TESSERA_LOGIN_RATE_LIMIT: '1000',
    // Suites sign in once (signIn below) and do not refresh: access tokens live as long as a session did before
    // refresh tokens (15 min). The session tests set the real default (5 min) themselves.
    TESSERA_ACCESS_TOKEN_TTL_SECONDS: '900',
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    ...options.env,
  });
  const hub = await startHub(config, { logger: false });
  return {
    ...hub,
    dataDir,
    stop: () => hub.close(),
    async dispose() {
      await hub.close();
      await server?.drop();
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Signs in and returns the bearer header. */
export async function signIn(hub: RunningHub, username: string, password: string): Promise<Record<string, string>> {
  const res = await fetch(`${hub.url}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  if (res.status !== 200) throw new Error(`login as ${username} failed: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { accessToken: string };
  return { authorization: `Bearer ${body.accessToken}` };
}

export async function api(
  hub: RunningHub,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; json?: unknown; raw?: string } = {},
): Promise<{ status: number; body: unknown; headers: Headers }> {
  const headers: Record<string, string> = { ...options.headers };
  let body: string | undefined;
  if (options.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(options.json);
  } else if (options.raw !== undefined) {
    headers['content-type'] = 'application/json';
    body = options.raw;
  }
  const res = await fetch(`${hub.url}${path}`, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (metrics, for instance): keep the text
  }
  return { status: res.status, body: parsed, headers: res.headers };
}
