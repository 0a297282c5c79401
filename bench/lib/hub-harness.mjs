/* global process, fetch, setTimeout, Buffer, URL */
// Runs the REAL hub as a separate process (node apps/hub/dist/main.js) and drives it through its real API and
// protocol, as the integration tests do (apps/hub/src/studies/studies.int-spec.ts, testing/test-silo.test-util.ts):
// admin login, silo registration, enrollment with a CSR over TLS, study plan, approvals over mutual TLS, start.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { repoRoot } from './bench-common.mjs';

const require = createRequire(import.meta.url);
const { createCsr, generateKeyPair } = require('@tessera/pki');
const { SILO_API, SILO_STUDY_API } = require('@tessera/protocol');

export const HUB_MAIN = process.env.TESSERA_BENCH_HUB_MAIN
  ? resolve(process.env.TESSERA_BENCH_HUB_MAIN)
  : resolve(repoRoot, 'apps/hub/dist/main.js');
const SERVER_DATABASE = process.env.TESSERA_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A free TCP port on loopback (listen on 0, read it, close). */
export function freePort() {
  return new Promise((done, fail) => {
    const s = createServer();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => done(port));
    });
  });
}

/** Creates a fresh database on the PostgreSQL server; returns its URL and a drop() function. */
export async function freshDatabase(prefix) {
  const { Client } = require('pg');
  const name = `${prefix}_${process.pid}_${Date.now()}`;
  const admin = new Client({ connectionString: SERVER_DATABASE });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(SERVER_DATABASE);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    async drop() {
      const c = new Client({ connectionString: SERVER_DATABASE });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** Is a PostgreSQL server reachable (TESSERA_BENCH_DATABASE_URL or 127.0.0.1:5432 user postgres)? */
export async function serverDatabaseAvailable() {
  try {
    const { Client } = require('pg');
    const c = new Client({ connectionString: SERVER_DATABASE, connectionTimeoutMillis: 2000 });
    await c.connect();
    await c.end();
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts `node apps/hub/dist/main.js` on fixed free ports with a fresh data directory (blobs, secrets) and either a
 * server database (`databaseUrl`) or the embedded one. Resolves once /health answers 200.
 */
export async function startHubProcess({ databaseUrl, env = {}, nodeOptions = [] } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'tessera-bench-hub-'));
  const [port, siloPort, enrollPort] = [await freePort(), await freePort(), await freePort()];
  const password = randomBytes(18).toString('base64url');
  const child = spawn(process.execPath, [...nodeOptions, HUB_MAIN], {
    cwd: repoRoot,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TESSERA_DATA_DIR: dataDir,
      TESSERA_HOST: '127.0.0.1',
      TESSERA_PORT: String(port),
      TESSERA_SILO_HOST: '127.0.0.1',
      TESSERA_SILO_PORT: String(siloPort),
      TESSERA_ENROLL_HOST: '127.0.0.1',
      TESSERA_ENROLL_PORT: String(enrollPort),
      TESSERA_ADMIN_USERNAME: 'bench-admin',
      TESSERA_ADMIN_PASSWORD: password,
      TESSERA_LOG_LEVEL: 'warn',
      // Every simulated agent enrolls from 127.0.0.1: the per-address limit on login/enrollment (10 a minute)
      // would refuse the 11th silo.
      TESSERA_LOGIN_RATE_LIMIT: '100000',
      // The harness signs in once and never refreshes: one access token for a whole run (at most the idle timeout).
      TESSERA_ACCESS_TOKEN_TTL_SECONDS: '900',
      ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c) => (output = (output + c.toString()).slice(-20_000)));
  child.stderr.on('data', (c) => (output = (output + c.toString()).slice(-20_000)));
  // TESSERA_BENCH_HUB_OUTPUT=FILE: every line the hub prints, appended to FILE (e.g. its request log, which times
  // each request inside the hub).
  if (process.env.TESSERA_BENCH_HUB_OUTPUT) {
    const file = createWriteStream(process.env.TESSERA_BENCH_HUB_OUTPUT, { flags: 'a' });
    child.stdout.pipe(file, { end: false });
    child.stderr.pipe(file, { end: false });
  }
  const exited = new Promise((done) => child.on('exit', (code, signal) => done({ code, signal })));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`hub exited with ${child.exitCode} before it was ready:\n${output}`);
    try {
      const res = await fetch(`${url}/health`);
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`hub not ready after 120 s:\n${output}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const login = await fetch(`${url}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'bench-admin', password }),
  });
  if (!login.ok) throw new Error(`admin login: ${login.status} ${await login.text()}`);
  const { accessToken } = await login.json();
  return {
    pid: child.pid,
    url,
    siloUrl: `https://127.0.0.1:${siloPort}`,
    enrollUrl: `https://127.0.0.1:${enrollPort}`,
    dataDir,
    /** The admin's bearer token (for readers that call the API themselves). */
    token: accessToken,
    output: () => output,
    /** Admin API call; throws on a non-2xx answer. */
    async admin(method, path, json) {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${accessToken}`,
          ...(json !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
      return text ? JSON.parse(text) : undefined;
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** One HTTPS request with a JSON or binary body; resolves { status, bytes }. */
export function tlsRequest(url, method, tls, body, contentType = 'application/json') {
  return new Promise((done, fail) => {
    const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    const req = httpsRequest(
      url,
      {
        method,
        agent: false,
        ...tls,
        headers: payload ? { 'content-type': contentType, 'content-length': String(payload.length) } : {},
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => done({ status: res.statusCode ?? 0, bytes: Buffer.concat(chunks) }));
      },
    );
    req.on('error', fail);
    if (payload) req.write(payload);
    req.end();
  });
}

const jsonOf = (r) => JSON.parse(r.bytes.toString('utf8'));

/**
 * Registers a silo (admin API), then enrolls it as an agent does: fetch the CA from the enrollment listener, make
 * a key pair here, send a CSR with the one-time token. Returns the silo's mutual-TLS identity.
 *
 * `keepAlive: true` makes the silo's calls reuse their connections as the agent does (apps/agent/src/hub/hub-client.ts:
 * one kept-alive pool per identity, idle sockets closed before the hub's 5 s keep-alive timeout); by default every
 * call opens a new mutual-TLS connection, as agents did before issue 21, item 3.
 */
export async function enrollSilo(hub, name, { keepAlive = false } = {}) {
  const issued = await hub.admin('POST', '/api/silos', { name, contact: 'it@bench.example' });
  const bundle = issued.bundle;
  const ca = await tlsRequest(new URL(SILO_API.caCertificate, bundle.enrollUrl), 'GET', { rejectUnauthorized: false });
  const caPem = jsonOf(ca).caCertificatePem;
  const keys = generateKeyPair();
  const res = await tlsRequest(
    new URL(SILO_API.enroll, bundle.enrollUrl),
    'POST',
    { ca: [caPem] },
    {
      token: bundle.token,
      csrPem: createCsr({ privateKeyPem: keys.privateKeyPem, siloId: bundle.siloId }),
    },
  );
  if (res.status !== 200) throw new Error(`enroll ${name}: ${res.status} ${res.bytes}`);
  const grant = jsonOf(res);
  const identity = { ca: [caPem], key: keys.privateKeyPem, cert: grant.certificatePem };
  const tls = keepAlive
    ? { ...identity, agent: new HttpsAgent({ ...identity, keepAlive: true, scheduling: 'lifo', timeout: 4_000 }) }
    : identity;
  return {
    id: bundle.siloId,
    name,
    caPem,
    tls,
    /** JSON call over mutual TLS to the silo listener. */
    async call(method, path, body) {
      const r = await tlsRequest(new URL(path, hub.siloUrl), method, tls, body);
      return { status: r.status, body: r.bytes.length ? jsonOf(r) : undefined };
    },
  };
}

/** Creates the study from `plan`, submits it, has every silo approve the exact plan hash, starts it. */
export async function startStudy(hub, plan, silos) {
  const study = await hub.admin('POST', '/api/studies', { plan });
  await hub.admin('POST', `/api/studies/${study.id}/submit`);
  await Promise.all(
    silos.map(async (s) => {
      const r = await s.call('POST', SILO_STUDY_API.decision(study.id), {
        planHash: study.planHash,
        decision: 'approve',
      });
      if (r.status !== 200) throw new Error(`approve ${s.name}: ${r.status} ${JSON.stringify(r.body)}`);
    }),
  );
  await hub.admin('POST', `/api/studies/${study.id}/start`);
  return study;
}

/** The silo's current task for `studyId` (long-polls up to `waitSeconds`). */
export async function taskFor(silo, studyId, waitSeconds = 5) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const r = await silo.call('GET', `${SILO_STUDY_API.tasks}?wait=${waitSeconds}`);
    const t = (r.body?.tasks ?? []).find((x) => x.studyId === studyId);
    if (t) return t;
  }
  throw new Error(`no task for study ${studyId}`);
}
