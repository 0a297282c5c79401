import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HUB_MAIN, hubEnv, startHubProcess, type HubProcess } from '../testing/hub-process.test-util';

const dirs: string[] = [];
const children: ChildProcess[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tessera-hard-'));
  dirs.push(d);
  return d;
}
async function started(env: NodeJS.ProcessEnv): Promise<HubProcess> {
  const hub = await startHubProcess(env);
  children.push(hub.child);
  return hub;
}
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** TCP sockets in LISTEN state (st 0A) of one process: /proc/net/tcp{,6} joined with the inodes of its fds. */
function listeningTcpPorts(pid: number): { host: string; port: number }[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // The fd closed between readdir and readlink: it is not a listener we could miss.
    }
  }
  const found: { host: string; port: number }[] = [];
  for (const [file, loopback] of [
    ['/proc/net/tcp', '127.0.0.1'],
    ['/proc/net/tcp6', '::1'],
  ] as const) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10 || cols[3] !== '0A' || !inodes.has(cols[9]!)) continue;
      const [addrHex, portHex] = cols[1]!.split(':') as [string, string];
      // Connect where it listens: an IPv4 address is stored little-endian; anything else is probed on loopback.
      const host =
        addrHex.length === 8
          ? (addrHex.match(/../g) ?? [])
              .map((b) => parseInt(b, 16))
              .reverse()
              .join('.')
          : loopback;
      found.push({ host: host === '0.0.0.0' ? '127.0.0.1' : host, port: parseInt(portHex, 16) });
    }
  }
  return found;
}

/** A PostgreSQL v3.0 StartupMessage for user and database "postgres". */
function startupMessage(): Buffer {
  const params = Buffer.from('user\0postgres\0database\0postgres\0\0', 'latin1');
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + params.length, 0);
  head.writeInt32BE(196608, 4); // protocol 3.0
  return Buffer.concat([head, params]);
}

/** True when the peer answers a startup with an Authentication message ('R'), as any PostgreSQL server must. */
function speaksPostgres(target: { host: string; port: number } | { path: string }): Promise<boolean> {
  return new Promise((done) => {
    const socket = createConnection(target as { host: string; port: number });
    let got = Buffer.alloc(0);
    const finish = (answer: boolean) => {
      socket.destroy();
      done(answer);
    };
    socket.setTimeout(3_000, () => finish(false));
    socket.on('connect', () => socket.write(startupMessage()));
    socket.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length >= 9) finish(got[0] === 0x52 && got.readInt32BE(1) >= 8);
    });
    socket.on('error', () => finish(false));
    socket.on('close', () => finish(false));
  });
}

function exitWithin(child: ChildProcess, ms: number): Promise<number | null | 'still running'> {
  return new Promise((done) => {
    if (child.exitCode !== null) return done(child.exitCode);
    const timer = setTimeout(() => done('still running'), ms);
    child.once('exit', (code) => {
      clearTimeout(timer);
      done(code);
    });
  });
}

function occupy(): Promise<{ server: Server; port: number }> {
  return new Promise((done) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => done({ server, port: (server.address() as { port: number }).port }));
  });
}

describe('the embedded database is reachable by the hub only', () => {
  it('opens no TCP port that speaks PostgreSQL; its Unix socket is 0600 in a 0700 directory', async () => {
    const dataDir = tempDir();
    const hub = await started(hubEnv(dataDir));
    const pid = hub.child.pid!;
    const ports = listeningTcpPorts(pid);
    // Exactly the three HTTP listeners (people, silo, enrollment): enumerating found them, and nothing more.
    expect(ports).toHaveLength(3);
    for (const target of ports) expect(await speaksPostgres(target), `${target.host}:${target.port}`).toBe(false);

    const socketDir = join(dataDir, 'db-socket');
    const socketPath = join(socketDir, '.s.PGSQL.5432');
    expect(statSync(socketDir).mode & 0o777).toBe(0o700);
    expect(statSync(socketPath).isSocket()).toBe(true);
    expect(statSync(socketPath).mode & 0o777).toBe(0o600);
    // The probe does recognise PostgreSQL: the socket, reachable by this same user only, answers it.
    expect(await speaksPostgres({ path: socketPath })).toBe(true);
  });
});

describe('the embedded database lock', () => {
  it('is not blocked by a lock file naming a live process that is not a hub', async () => {
    const dataDir = tempDir();
    const bystander = spawn('sleep', ['120'], { stdio: 'ignore' });
    children.push(bystander);
    writeFileSync(join(dataDir, 'pgdata.lock'), `${bystander.pid}\n`);
    const hub = await started(hubEnv(dataDir));
    expect(readFileSync(join(dataDir, 'pgdata.lock'), 'utf8').trim()).toBe(String(hub.child.pid));
  });

  it('refuses a second hub on the same data directory, and frees it when the first is killed', async () => {
    const dataDir = tempDir();
    const first = await started(hubEnv(dataDir));
    const second = spawnSync(process.execPath, [HUB_MAIN], { env: hubEnv(dataDir), encoding: 'utf8', timeout: 60_000 });
    expect(second.status).toBe(1);
    expect(second.stderr).toContain(`the embedded database in ${dataDir} is in use by process ${first.child.pid}`);

    first.child.kill('SIGKILL');
    expect(await exitWithin(first.child, 10_000)).toBeNull(); // killed by a signal: no exit code
    // No cleanup ran: the lock file and the socket file are still there, and neither stops the next hub.
    const third = await started(hubEnv(dataDir));
    expect(third.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });
});

describe('a hub that cannot open a listener', () => {
  for (const [listener, variable] of [
    ['silo', 'TESSERA_SILO_PORT'],
    ['people', 'TESSERA_PORT'],
    ['enrollment', 'TESSERA_ENROLL_PORT'],
  ] as const) {
    it(`exits non-zero naming the ${listener} listener when its port is taken, and releases the database`, async () => {
      const dataDir = tempDir();
      mkdirSync(dataDir, { recursive: true });
      const taken = await occupy();
      try {
        const child = spawn(process.execPath, [HUB_MAIN], {
          env: hubEnv(dataDir, { [variable]: String(taken.port) }),
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        children.push(child);
        let stderr = '';
        child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        child.stdout.resume();
        // Boot (embedded database, migrations) takes seconds; a half-started hub would never exit at all.
        expect(await exitWithin(child, 60_000)).toBe(1);
        expect(stderr).toContain(`the ${listener} listener cannot listen on 127.0.0.1:${taken.port}`);
        expect(stderr).toContain('already in use');
      } finally {
        taken.server.close();
      }
      // The database lock went with the process: a hub starts on the same data directory.
      const next = await started(hubEnv(dataDir));
      expect(next.url).toMatch(/^http:\/\//);
    });
  }
});
