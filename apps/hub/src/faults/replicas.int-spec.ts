import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoundView } from '../rounds/rounds-query.service';
import type { EnrollmentIssued } from '../silos/silos.service';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import type { StudyView } from '../studies/studies.service';
import { s3SuiteAvailability, startS3TestServer, type S3TestServer } from '../blobs/s3-test-server.test-util';
import { runAgent, startAgentRun, type AgentRun } from '../testing/agent-process.test-util';
import {
  heartFile,
  HubApiClient,
  hubEnv,
  processTestBed,
  startHubProcess,
  until,
  type HubProcess,
} from '../testing/hub-process.test-util';
import { createServerDatabase } from '../testing/test-hub.test-util';
import { freePort } from './fault-bed.test-util';

/**
 * A TCP load balancer on loopback, as a Kubernetes Service or an L4 balancer in front of hub replicas: each new
 * connection goes to the first backend in `order` that accepts it, so when that replica dies its agents land on the
 * next one. TLS passes through untouched (mutual TLS ends at the hub).
 */
class FailoverBalancer {
  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly sockets: Set<Socket>,
    /** Connections relayed, by backend port. */
    readonly connections: Map<number, number>,
  ) {}

  static async start(order: () => number[]): Promise<FailoverBalancer> {
    const sockets = new Set<Socket>();
    const connections = new Map<number, number>();
    const server = createServer((client) => {
      client.pause();
      const attempt = (backends: number[]) => {
        const [port, ...rest] = backends;
        if (port === undefined) return client.destroy();
        const upstream = connect(port, '127.0.0.1');
        upstream.once('error', () => attempt(rest));
        upstream.once('connect', () => {
          upstream.removeAllListeners('error');
          connections.set(port, (connections.get(port) ?? 0) + 1);
          for (const s of [client, upstream]) {
            sockets.add(s);
            s.on('close', () => sockets.delete(s));
            s.on('error', () => {
              client.destroy();
              upstream.destroy();
            });
          }
          client.pipe(upstream);
          upstream.pipe(client);
          client.resume();
        });
      };
      attempt(order());
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    return new FailoverBalancer(server, (server.address() as { port: number }).port, sockets, connections);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((done) => this.server.close(() => done()));
  }
}

interface Replica {
  name: string;
  hub: HubProcess;
  api: HubApiClient;
  siloPort: number;
  enrollPort: number;
}

const ADMIN_PASSWORD = 'replica suite admin password';
const availability = s3SuiteAvailability();

/**
 * Issue 18, item 4: two hub processes on one PostgreSQL database and one S3 bucket (Swift's s3api on loopback), each
 * with its own empty data directory and the shared secrets an operator gives every replica; agents split between
 * them behind balancers; one replica killed in the middle of a round. The other serves everyone, closes every round
 * exactly once, and the study completes with a report that verifies.
 */
describe.skipIf(!availability.run)('several hub replicas on one PostgreSQL and one S3 store', () => {
  const bed = processTestBed('tessera-replicas-');
  let s3: S3TestServer;
  let databaseUrl = '';
  let bucket = '';
  const replicas: Replica[] = [];
  const balancers: FailoverBalancer[] = [];
  const runs: AgentRun[] = [];
  const secrets = {
    TESSERA_JWT_SECRET: randomBytes(32).toString('hex'),
    TESSERA_CA_KEY_PASSPHRASE: randomBytes(24).toString('hex'),
  };

  beforeAll(async () => {
    s3 = await startS3TestServer();
    bed.cleanups.push(() => s3.stop());
    bucket = await s3.createBucket();
    const db = await createServerDatabase();
    databaseUrl = db.url;
    bed.cleanups.push(db.drop);
  }, 240_000);

  afterAll(async () => {
    for (const r of replicas) if (r.hub.child.exitCode === null) r.hub.child.kill('SIGKILL');
    for (const b of balancers) await b.close();
  });

  async function startReplica(name: string, publicSiloPort: number, publicEnrollPort: number): Promise<Replica> {
    const [siloPort, enrollPort] = [await freePort(), await freePort()];
    const hub = await startHubProcess(
      hubEnv(join(bed.root, `hub-${name}`), {
        ...secrets,
        DATABASE_URL: databaseUrl,
        TESSERA_ADMIN_USERNAME: 'admin',
        TESSERA_ADMIN_PASSWORD: ADMIN_PASSWORD,
        TESSERA_LOG_LEVEL: 'info',
        TESSERA_SILO_PORT: String(siloPort),
        TESSERA_ENROLL_PORT: String(enrollPort),
        TESSERA_PUBLIC_SILO_URL: `https://127.0.0.1:${publicSiloPort}`,
        TESSERA_PUBLIC_ENROLL_URL: `https://127.0.0.1:${publicEnrollPort}`,
        TESSERA_BLOB_STORE: 's3',
        TESSERA_S3_BUCKET: bucket,
        TESSERA_S3_REGION: s3.region,
        TESSERA_S3_ENDPOINT: s3.endpoint,
        TESSERA_S3_FORCE_PATH_STYLE: 'true',
        AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
      }),
    );
    const api = new HubApiClient(hub.url, 'admin', ADMIN_PASSWORD);
    await api.signIn(hub.url);
    const replica = { name, hub, api, siloPort, enrollPort };
    replicas.push(replica);
    return replica;
  }

  const alive = (r: Replica) => r.hub.child.exitCode === null && r.hub.child.signalCode === null;

  it('serve one study across two replicas, one killed mid-round, every round closed exactly once', async () => {
    // Each group of agents has its own balancer, preferring its own replica and failing over to the other.
    const live: { a?: Replica; b?: Replica } = {};
    const prefer = (first: 'a' | 'b', port: 'siloPort' | 'enrollPort') => () =>
      (first === 'a' ? [live.a, live.b] : [live.b, live.a]).filter((r) => r !== undefined).map((r) => r[port]);
    const siloA = await FailoverBalancer.start(prefer('a', 'siloPort'));
    const enrollA = await FailoverBalancer.start(prefer('a', 'enrollPort'));
    const siloB = await FailoverBalancer.start(prefer('b', 'siloPort'));
    const enrollB = await FailoverBalancer.start(prefer('b', 'enrollPort'));
    balancers.push(siloA, enrollA, siloB, enrollB);
    // The first boot creates the schema, the CA and the server certificate; the second replica finds them.
    const replicaA = (live.a = await startReplica('a', siloA.port, enrollA.port));
    const replicaB = (live.b = await startReplica('b', siloB.port, enrollB.port));

    // Agents enroll through their own replica's balancer, with bundles issued by that replica.
    const silos: { key: string; id: string; env: Record<string, string>; via: Replica }[] = [];
    for (const [key, via] of [
      ['cleveland', replicaA],
      ['hungarian', replicaA],
      ['switzerland', replicaB],
      ['va', replicaB],
    ] as const) {
      const issued = await via.api.call<EnrollmentIssued>('POST', '/api/silos', {
        name: `Replica ${key}`,
        contact: 'it@example.org',
      });
      expect(issued.bundle.hubSiloUrl).toBe(`https://127.0.0.1:${via === replicaA ? siloA.port : siloB.port}`);
      const env = { TESSERA_STATE_DIR: join(bed.root, key), TESSERA_DATA_FILE: heartFile(`processed.${key}.data`) };
      const enrolled = await runAgent(['enroll', '--bundle', issued.bundleText], env);
      expect(enrolled.code, enrolled.stderr).toBe(0);
      silos.push({ key, id: issued.silo.id, env, via });
    }

    // A person signed in at one replica is signed in at the other (shared session key and sessions table).
    const plan = heartDiseasePlan(
      silos.map((s) => s.id),
      {
        participation: { minSilosPerRound: 3, roundDeadlineSeconds: 30, maxRoundRetries: 2, onSiloFailure: 'continue' },
      },
    );
    plan.training.rounds = 4;
    const study = await replicaA.api.call<StudyView>('POST', '/api/studies', { plan });
    expect((await replicaB.api.call<StudyView>('GET', `/api/studies/${study.id}`)).planHash).toBe(study.planHash);
    await replicaB.api.call('POST', `/api/studies/${study.id}/submit`);
    for (const s of silos) {
      const approved = await runAgent(['studies', 'approve', study.id, '--plan-hash', study.planHash], s.env);
      expect(approved.code, approved.stderr).toBe(0);
    }
    for (const s of silos) {
      const run = startAgentRun(study.id, s.env, 1);
      runs.push(run);
      bed.agents.push(run.child);
    }
    await replicaA.api.call('POST', `/api/studies/${study.id}/start`);

    // Mid-round: a round after the first open with at least one update accepted and not all of them in. Uploads that
    // arrive together commit together (ADR 0022), so a round may go from none to all at once: any of rounds 2–4 will do.
    const rounds = (api: HubApiClient) => api.call<RoundView[]>('GET', `/api/studies/${study.id}/rounds`);
    await until(
      'a round after the first to be under way',
      async () =>
        (await rounds(replicaB.api)).some((r) => {
          const uploaded = r.participants.filter((p) => p.status === 'uploaded').length;
          return r.number >= 2 && r.status === 'open' && uploaded >= 1 && uploaded < silos.length;
        }),
      120_000,
    );
    replicaA.hub.child.kill('SIGKILL');
    await replicaA.hub.exited;
    expect(alive(replicaA)).toBe(false);

    // Replica b carries on alone: the agents of a fail over to it through their balancer.
    await until(
      'the study to complete on the surviving replica',
      async () => {
        const s = await replicaB.api.call<StudyView>('GET', `/api/studies/${study.id}`);
        if (s.status === 'failed' || s.status === 'stopped') throw new Error(`the study ${s.status}: ${s.endReason}`);
        return s.status === 'completed';
      },
      240_000,
    );
    for (const run of runs) expect(await run.exited, run.output().slice(-2000)).toBe(0);
    // The agents of a were served by a until it died, then by b; neither replica kept a blob on its own disk.
    expect(siloA.connections.get(replicaA.siloPort) ?? 0).toBeGreaterThan(0);
    expect(siloA.connections.get(replicaB.siloPort) ?? 0).toBeGreaterThan(0);
    for (const r of [replicaA, replicaB]) expect(existsSync(join(bed.root, `hub-${r.name}`, 'blobs'))).toBe(false);

    // Exactly once, from the database itself: one closed row per round and one close in the audit trail.
    const { Client } = await import('pg');
    const c = new Client({ connectionString: databaseUrl });
    await c.connect();
    try {
      const roundRows = (
        await c.query<{ number: number; closed: string; other: string }>(
          `SELECT number, count(*) FILTER (WHERE status = 'closed') AS closed,
                  count(*) FILTER (WHERE status NOT IN ('closed', 'retried')) AS other
             FROM rounds WHERE study_id = $1 GROUP BY number ORDER BY number`,
          [study.id],
        )
      ).rows;
      // Rounds 1–4 train; a final evaluation round may follow. A retried attempt may precede a round's close.
      expect(roundRows.slice(0, 4).map((r) => r.number)).toEqual([1, 2, 3, 4]);
      expect(roundRows.map((r) => [r.number, Number(r.closed), Number(r.other)])).toEqual(
        roundRows.map((r) => [r.number, 1, 0]),
      );
      const closes = (
        await c.query<{ round: number; n: string }>(
          `SELECT (details->>'round')::int AS round, count(*) AS n FROM audit_records
            WHERE action = 'round.closed' AND study_id = $1 GROUP BY 1 ORDER BY 1`,
          [study.id],
        )
      ).rows;
      expect(closes.map((r) => [r.round, Number(r.n)])).toEqual(roundRows.map((r) => [r.number, 1]));
    } finally {
      await c.end();
    }

    // The record of it all verifies, fetched from the surviving replica; its blobs all came from the shared bucket.
    const verified = await replicaB.api.call<{ ok: boolean }>('GET', '/api/audit/verify');
    expect(verified.ok, JSON.stringify(verified)).toBe(true);
  }, 600_000);
});
