import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

/**
 * A real S3-protocol server on loopback for the integration tests: OpenStack Swift's proxy with its `s3api`
 * middleware (Debian's swift-proxy, swift-account, swift-container and swift-object packages), the S3 front end that
 * production Swift clusters serve. It checks SigV4 signatures, enforces multipart rules (5 MiB parts, ordered part
 * lists) and answers S3's error codes, which the npm fakes evaluated (s3rver, fauxqs) do not: see
 * docs/operator-guide.md, "Deploying with S3". One process per Swift server, one device, one replica, every port
 * on 127.0.0.1; everything lives in a temporary directory removed by `stop()`.
 */
export const SWIFT_BINARIES = [
  'swift-ring-builder',
  'swift-proxy-server',
  'swift-account-server',
  'swift-container-server',
  'swift-object-server',
] as const;

/** The Debian packages that bring SWIFT_BINARIES (.ci/system-deps.sh installs them). */
export const SWIFT_PACKAGES = 'swift-proxy swift-account swift-container swift-object';

const ACCOUNT = { name: 'tessera', user: 'hub' } as const;
const SERVERS = ['account', 'container', 'object'] as const;
const STARTUP_TIMEOUT_MS = 180_000;

/** The directory on PATH that holds `binary`, or undefined. */
function binDir(binary: string): string | undefined {
  return (process.env.PATH ?? '').split(delimiter).find((dir) => dir && existsSync(join(dir, binary)));
}

/** The Swift programs this machine lacks; empty when the S3 test server can run. */
export function missingSwiftBinaries(): string[] {
  return SWIFT_BINARIES.filter((b) => binDir(b) === undefined);
}

/**
 * Whether the S3 suites run here. Outside CI a machine without Swift skips them with this message; under CI=true a
 * missing server is a failure (.ci/system-deps.sh must have installed it), never a silent skip.
 */
export function s3SuiteAvailability(): { run: true } | { run: false; reason: string } {
  const missing = missingSwiftBinaries();
  if (missing.length === 0) return { run: true };
  const reason =
    `the S3 integration tests need a real S3-protocol server: OpenStack Swift with s3api (${missing.join(', ')} ` +
    `not found). Install it with: apt-get install ${SWIFT_PACKAGES}`;
  if (process.env.CI === 'true' || process.env.CI === '1') throw new Error(`CI: ${reason}`);
  return { run: false, reason };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()));
  const address = server.address();
  await new Promise<void>((done) => server.close(() => done()));
  if (typeof address !== 'object' || !address) throw new Error('no free port');
  return address.port;
}

/**
 * One ring per server kind (one device, one replica, 2^6 partitions), built with Swift's RingBuilder in one Python
 * process under swift-ring-builder's own interpreter: nine swift-ring-builder runs took most of the start-up.
 */
function buildRings(etc: string, ports: number[]): void {
  const builder = join(binDir('swift-ring-builder') ?? '/usr/bin', 'swift-ring-builder');
  // "#! /usr/bin/python3" on Debian; "#!/usr/bin/env python3" elsewhere.
  const [python, ...pythonArgs] = readFileSync(builder, 'utf8')
    .split('\n', 1)[0]!
    .replace(/^#!\s*/, '')
    .trim()
    .split(/\s+/);
  const script = [
    'import sys',
    'from swift.common.ring import RingBuilder',
    "for kind, port in zip(('account', 'container', 'object'), sys.argv[2:5]):",
    '    b = RingBuilder(6, 1, 1)',
    "    b.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': int(port), 'device': 'd1', 'weight': 1.0})",
    '    b.rebalance()',
    "    b.get_ring().save(sys.argv[1] + '/' + kind + '.ring.gz')",
  ].join('\n');
  const r = spawnSync(python!, [...pythonArgs, '-c', script, etc, ...ports.map(String)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building the Swift rings failed: ${r.error?.message ?? ''}${r.stderr}`);
}

function serverConf(root: string, kind: string, port: number): string {
  return `[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${port}
workers = 0
swift_dir = ${join(root, 'etc')}
devices = ${join(root, 'srv')}
mount_check = false
disable_fallocate = true
log_level = WARNING
log_address = ${join(root, 'no-syslog')}

[pipeline:main]
pipeline = ${kind}-server

[app:${kind}-server]
use = egg:swift#${kind}
`;
}

function proxyConf(root: string, port: number, memcachePort: number, secret: string): string {
  // tempauth requires a memcache middleware; with no memcached listening every lookup misses, which only costs a
  // little time. s3api sits before tempauth, which checks the SigV4 signature against the user's key.
  return `[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${port}
workers = 0
swift_dir = ${join(root, 'etc')}
log_level = WARNING
log_address = ${join(root, 'no-syslog')}

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:${memcachePort}
[filter:s3api]
use = egg:swift#s3api
location = us-east-1
[filter:tempauth]
use = egg:swift#tempauth
user_${ACCOUNT.name}_${ACCOUNT.user} = ${secret} .admin
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
`;
}

export interface S3TestServer {
  readonly endpoint: string;
  readonly port: number;
  readonly region: string;
  readonly credentials: { accessKeyId: string; secretAccessKey: string };
  /** A client with the server's credentials (path-style, as self-hosted stores are addressed). */
  client(options?: { endpoint?: string; secretAccessKey?: string }): S3Client;
  /** A new empty bucket. */
  createBucket(): Promise<string>;
  stop(): Promise<void>;
}

/** Starts Swift with s3api on free loopback ports and waits until it creates a bucket. */
export async function startS3TestServer(): Promise<S3TestServer> {
  const root = mkdtempSync(join(tmpdir(), 'tessera-swift-'));
  const etc = join(root, 'etc');
  mkdirSync(etc);
  mkdirSync(join(root, 'srv', 'd1'), { recursive: true });
  const secret = randomBytes(12).toString('hex');
  const [proxyPort, memcachePort, ...ports] = await Promise.all([1, 2, 3, 4, 5].map(() => freePort()));
  const hashSalt = randomBytes(8).toString('hex');
  writeFileSync(
    join(etc, 'swift.conf'),
    `[swift-hash]\nswift_hash_path_suffix = ${hashSalt}\nswift_hash_path_prefix = ${hashSalt}\n\n` +
      '[storage-policy:0]\nname = Policy-0\ndefault = yes\n',
  );
  buildRings(etc, ports);
  SERVERS.forEach((kind, i) => writeFileSync(join(etc, `${kind}-server.conf`), serverConf(root, kind, ports[i]!)));
  writeFileSync(join(etc, 'proxy-server.conf'), proxyConf(root, proxyPort!, memcachePort!, secret));

  const children: ChildProcess[] = [];
  for (const kind of [...SERVERS, 'proxy']) {
    // Swift points its stdout at /dev/null once started and logs to stderr (--verbose): one file per server, and
    // `end: false` so the first stream to close does not end the file under the other.
    const log = createWriteStream(join(root, `${kind}.log`));
    const child = spawn(`swift-${kind}-server`, [join(etc, `${kind}-server.conf`), '--verbose'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    children.push(child);
  }
  const stopWatchdog = reapWithThisProcess(children);
  const stopAll = async () => {
    stopWatchdog();
    await Promise.all(
      children.map(async (c) => {
        if (c.exitCode !== null || c.signalCode !== null) return;
        const exited = new Promise((done) => c.once('exit', done));
        c.kill('SIGTERM');
        const timer = setTimeout(() => c.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }),
    );
  };

  const endpoint = `http://127.0.0.1:${proxyPort}`;
  const credentials = { accessKeyId: `${ACCOUNT.name}:${ACCOUNT.user}`, secretAccessKey: secret };
  const client = (options: { endpoint?: string; secretAccessKey?: string } = {}) =>
    new S3Client({
      endpoint: options.endpoint ?? endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { ...credentials, ...(options.secretAccessKey ? { secretAccessKey: options.secretAccessKey } : {}) },
      maxAttempts: 1,
    });
  const admin = client();
  const createBucket = async () => {
    const bucket = `tessera-${randomBytes(5).toString('hex')}`;
    await admin.send(new CreateBucketCommand({ Bucket: bucket }), { abortSignal: AbortSignal.timeout(30_000) });
    return bucket;
  };

  try {
    await waitUntilServing(createBucket, children, root);
  } catch (err) {
    await stopAll();
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
  return {
    endpoint,
    port: proxyPort!,
    region: 'us-east-1',
    credentials,
    client,
    createBucket,
    async stop() {
      admin.destroy();
      await stopAll();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * Swift's servers call setsid(), so they outlive a test process that is killed (a CI time-out, Ctrl-C): a detached
 * shell watches this process and ends them when it is gone; a normal exit ends them at once.
 */
function reapWithThisProcess(children: ChildProcess[]): () => void {
  const pids = children.map((c) => c.pid).filter((pid): pid is number => pid !== undefined);
  process.once('exit', () => children.forEach((c) => c.kill('SIGKILL')));
  const watchdog = spawn(
    'sh',
    ['-c', `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; kill -9 ${pids.join(' ')} 2>/dev/null`],
    { detached: true, stdio: 'ignore' },
  );
  watchdog.unref();
  // Once the servers are stopped their pids may be reused: the watchdog must not outlive them.
  return () => watchdog.kill('SIGKILL');
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new Error(`no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Swift's Python servers take seconds to import; the first bucket created proves all four are up. */
async function waitUntilServing(
  createBucket: () => Promise<string>,
  children: ChildProcess[],
  root: string,
): Promise<void> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  let last: unknown;
  while (Date.now() < deadline) {
    const dead = children.find((c) => c.exitCode !== null);
    if (dead) break;
    try {
      await withTimeout(createBucket(), 5_000);
      return;
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  const logs = [...SERVERS, 'proxy']
    .map((k) => `--- ${k}\n${readFileSync(join(root, `${k}.log`), 'utf8').slice(-2000)}`)
    .join('\n');
  throw new Error(`the Swift S3 test server did not start: ${String(last)}\n${logs}`);
}
