import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { runVerifyCli, verifyBundle, type AuditBundle } from '@tessera/audit';
import { chargedEpsilon } from '@tessera/dp';
import { SILO_STUDY_API, type StudyPlan, type TabularStudyPlan } from '@tessera/protocol';
import { Client, type ClientConfig } from 'pg';
import { expect } from 'vitest';
import { startEmbeddedPostgres } from '../database/embedded-postgres';
import type { RoundView } from '../rounds/rounds-query.service';
import type { EnrollmentIssued } from '../silos/silos.service';
import type { StudyPrivacyView } from '../studies/studies.controller';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import type { StudyView } from '../studies/studies.service';
import { runAgent, startAgentRun, type AgentRun } from '../testing/agent-process.test-util';
import {
  heartFile,
  HubApiClient,
  hubEnv,
  startHubProcess,
  until,
  type HubProcess,
  type ProcessTestBed,
} from '../testing/hub-process.test-util';
import { REFERENCED_BLOBS } from '../rounds/orphan-blob-sweep.service';

/** Every blob a row can name: the hub's orphan sweep's own union, so the two never drift apart. */
const REFERENCED = REFERENCED_BLOBS;

export const ADMIN_PASSWORD = 'fault suite admin password';

export interface FaultSilo {
  key: string;
  id: string;
  env: Record<string, string>;
  run?: AgentRun;
}

/**
 * One hub (restartable on the same database, data directory and silo port), its agents and its study; on the
 * PostgreSQL server at `databaseUrl`, or on the embedded database in its data directory when that is null.
 */
export class FaultBed {
  hub!: HubProcess;
  api!: HubApiClient;
  silos: FaultSilo[] = [];
  studyId = '';
  private siloPort = '0';

  constructor(
    readonly bed: ProcessTestBed,
    readonly databaseUrl: string | null,
  ) {}

  get dataDir(): string {
    return join(this.bed.root, 'hub');
  }

  /** Starts (or restarts) the hub; `extra` adds variables such as TESSERA_FAULT_POINT for this boot only. */
  async startHub(extra: Record<string, string> = {}): Promise<HubProcess> {
    this.hub = this.bed.hub = await startHubProcess(
      hubEnv(this.dataDir, {
        ...(this.databaseUrl === null ? {} : { DATABASE_URL: this.databaseUrl }),
        TESSERA_ADMIN_USERNAME: 'admin',
        TESSERA_ADMIN_PASSWORD: ADMIN_PASSWORD,
        TESSERA_LOG_LEVEL: 'info',
        TESSERA_SILO_PORT: this.siloPort,
        ...extra,
      }),
    );
    if (!this.api) this.api = new HubApiClient(this.hub.url, 'admin', ADMIN_PASSWORD);
    try {
      await this.api.signIn(this.hub.url);
    } catch (err) {
      // A hub started with a fault point may reach it (a round due at boot) and kill itself before the sign-in is
      // answered; hubDies() then checks that it died there. Any other failure to sign in is the test's failure.
      const hub = this.hub;
      const died = await Promise.race([
        hub.exited.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 5_000)),
      ]);
      if (!died || extra.TESSERA_FAULT_POINT === undefined) throw err;
    }
    return this.hub;
  }

  /** Waits for a hub started with a fault point to kill itself; fails if it does not within `timeoutMs`. */
  async hubDies(timeoutMs = 60_000): Promise<void> {
    const code = await Promise.race([
      this.hub.exited,
      new Promise<'alive'>((r) => setTimeout(() => r('alive'), timeoutMs)),
    ]);
    if (code === 'alive') throw new Error(`the hub did not reach its fault point:\n${this.hub.output().slice(-3000)}`);
    expect(this.hub.output()).toContain('TESSERA_FAULT_POINT: killing the hub');
  }

  async stopHub(): Promise<void> {
    if (this.hub.child.exitCode === null) {
      this.hub.child.kill('SIGKILL');
      await this.hub.exited;
    }
  }

  /** Enrolls hospital agents with the public heart-disease files. */
  async enroll(keys: string[]): Promise<void> {
    for (const key of keys) {
      const issued = await this.api.call<EnrollmentIssued>('POST', '/api/silos', {
        name: `Fault ${key}`,
        contact: 'it@example.org',
      });
      const env = {
        TESSERA_STATE_DIR: join(this.bed.root, key),
        TESSERA_DATA_FILE: heartFile(`processed.${key}.data`),
      };
      const enrolled = await runAgent(['enroll', '--bundle', issued.bundleText], env);
      expect(enrolled.code, enrolled.stderr).toBe(0);
      this.silos.push({ key, id: issued.silo.id, env });
    }
    // Restarts keep the silo port the agents learned at enrollment.
    const identity = JSON.parse(readFileSync(join(this.bed.root, keys[0]!, 'identity', 'identity.json'), 'utf8')) as {
      hubSiloUrl: string;
    };
    this.siloPort = new URL(identity.hubSiloUrl).port;
  }

  /**
   * Creates the study and has every silo approve it; `dp` selects DP-SGD (record level, ε ≤ 4); `overrides` replace
   * parts of the plan (e.g. a secureAggregation block and its participation rules).
   */
  async createStudy(dp: boolean, rounds = 2, overrides: Partial<TabularStudyPlan> = {}): Promise<StudyView> {
    const plan: StudyPlan = heartDiseasePlan(
      this.silos.map((s) => s.id),
      {
        participation: { minSilosPerRound: 2, roundDeadlineSeconds: 12, maxRoundRetries: 2, onSiloFailure: 'continue' },
        ...(dp
          ? {
              privacy: {
                mode: 'dp-sgd',
                unit: 'record',
                targetEpsilon: 4,
                delta: 1e-5,
                clipNorm: 1,
                noiseMultiplier: 'derive',
                samplingRate: 0.1,
              },
            }
          : {}),
        ...overrides,
      },
    );
    plan.training.rounds = rounds;
    const study = await this.api.call<StudyView>('POST', '/api/studies', { plan });
    this.studyId = study.id;
    await this.api.call('POST', `/api/studies/${study.id}/submit`);
    for (const s of this.silos) {
      const approved = await runAgent(['studies', 'approve', study.id, '--plan-hash', study.planHash], s.env);
      expect(approved.code, approved.stderr).toBe(0);
    }
    return study;
  }

  /** Starts the silo's agent for the current study; `extra` adds variables such as TESSERA_AGENT_FAULT_POINT. */
  startAgent(silo: FaultSilo, extra: Record<string, string> = {}): AgentRun {
    silo.run = startAgentRun(this.studyId, { ...silo.env, ...extra }, 1);
    this.bed.agents.push(silo.run.child);
    return silo.run;
  }

  async start(): Promise<void> {
    await this.api.call('POST', `/api/studies/${this.studyId}/start`);
  }

  rounds(): Promise<RoundView[]> {
    return this.api.call<RoundView[]>('GET', `/api/studies/${this.studyId}/rounds`);
  }

  async study(): Promise<StudyView> {
    return this.api.call<StudyView>('GET', `/api/studies/${this.studyId}`);
  }

  async completes(timeoutMs = 120_000): Promise<void> {
    await until(
      `study ${this.studyId} to complete`,
      async () => {
        const s = await this.study();
        if (s.status === 'failed' || s.status === 'stopped') throw new Error(`the study ${s.status}: ${s.endReason}`);
        return s.status === 'completed';
      },
      timeoutMs,
    );
  }

  /**
   * Sends the silo's persisted training release for `round` (releases/<study>/round-<r>-*.tsu, the exact bytes its
   * agent framed) with the silo's own key and certificate, as its agent re-sends it; returns status and answer.
   */
  async resendRelease(silo: FaultSilo, round: number): Promise<{ status: number; body: unknown }> {
    const state = join(this.bed.root, silo.key);
    const identity = JSON.parse(readFileSync(join(state, 'identity', 'identity.json'), 'utf8')) as {
      hubSiloUrl: string;
      keyFile: string;
      certificateFile: string;
    };
    const dir = join(state, 'releases', this.studyId);
    const file = readdirSync(dir).find((f) => f.startsWith(`round-${round}-`) && f.endsWith('.tsu'));
    if (!file) throw new Error(`${silo.key} has no persisted release for round ${round}`);
    const body = readFileSync(join(dir, file));
    return new Promise((done, fail) => {
      const req = httpsRequest(
        new URL(SILO_STUDY_API.update(this.studyId, round), identity.hubSiloUrl),
        {
          method: 'POST',
          agent: false,
          ca: [readFileSync(join(state, 'identity', 'ca.crt'), 'utf8')],
          key: readFileSync(join(state, 'identity', identity.keyFile), 'utf8'),
          cert: readFileSync(join(state, 'identity', identity.certificateFile), 'utf8'),
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(body.length) },
        },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => done({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown }));
        },
      );
      req.on('error', fail);
      req.end(body);
    });
  }

  /**
   * Reads the hub's database directly (the checks must not trust the hub's API alone). The embedded database serves
   * one session, its hub's: it is read only with the hub stopped, by opening its data directory here.
   */
  async query<T>(sql: string, args: unknown[] = []): Promise<T[]> {
    if (this.databaseUrl !== null) return this.queryWith({ connectionString: this.databaseUrl }, sql, args);
    if (this.hub.child.exitCode === null && this.hub.child.signalCode === null) {
      throw new Error('stop the hub before reading its embedded database');
    }
    const db = await startEmbeddedPostgres(this.dataDir);
    try {
      const at = { host: db.socketDirectory, port: db.socketPort, user: 'postgres', database: 'postgres' };
      return await this.queryWith(at, sql, args);
    } finally {
      await db.close();
    }
  }

  private async queryWith<T>(connection: ClientConfig, sql: string, args: unknown[]): Promise<T[]> {
    const c = new Client(connection);
    await c.connect();
    try {
      return (await c.query(sql, args)).rows as T[];
    } finally {
      await c.end();
    }
  }

  /**
   * The invariants after the faults, from the database, the blob store, the audit chain and each silo's own state:
   * - the report bundle verifies, including every accepted update, privacy charge and round transition the state
   *   tables hold having its record (STATE_UNRECORDED) and none recorded twice (STATE_RECORDED_TWICE);
   * - each silo's audit export (its receipts and uploads) reconciles with the bundle (tessera-verify --reconcile),
   *   every silo, also one killed before it read a receipt (its restarted agent asks the hub again);
   * - no accepted update is counted twice and no round closed twice;
   * - no blob that no row references (after a restart whose boot sweep ran with a 1 s grace period), no staged file;
   * - in a DP study each silo's own ledger charges at least what the hub charged it.
   */
  async assertNothingLost(dp: boolean): Promise<void> {
    // A restart with a short grace period: its boot sweep removes what crashes and superseded optimizer states left.
    await this.stopHub();
    await new Promise((r) => setTimeout(r, 1_100));
    await this.startHub({ TESSERA_BLOB_ORPHAN_GRACE_SECONDS: '1' });
    expect(this.hub.output()).toMatch(/orphan blobs removed|no orphan blobs/);

    const bundle = await this.api.call<AuditBundle>('GET', `/api/studies/${this.studyId}/report.json`);
    const verified = verifyBundle(bundle);
    expect(verified.problems).toEqual([]);
    expect(verified.summary?.stateItems).toBeGreaterThan(0);
    const reportFile = join(this.bed.root, `report-${this.studyId}.json`);
    writeFileSync(reportFile, JSON.stringify(bundle));
    for (const s of this.silos) {
      const out = join(this.bed.root, `${s.key}-audit.json`);
      const exported = await runAgent(['audit', 'export', '--out', out], s.env);
      expect(exported.code, exported.stderr).toBe(0);
      const reconciled = runVerifyCli([reportFile, '--reconcile', out]);
      expect(reconciled.stdout, `${s.key}: ${reconciled.stdout}${reconciled.stderr}`).toContain('is consistent');
      expect(reconciled.exitCode).toBe(0);
    }

    const twice = await this.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit_records
        WHERE action IN ('round.update.accepted', 'round.closed') AND study_id = $1
        GROUP BY action, subject->>'siloId', details->>'round', details->>'attempt' HAVING count(*) > 1`,
      [this.studyId],
    );
    expect(twice).toEqual([]);

    const referenced = new Set((await this.query<{ hash: string }>(REFERENCED)).map((r) => r.hash.trim()));
    const root = join(this.dataDir, 'blobs');
    const files = readdirSync(root)
      .filter((d) => d !== 'tmp')
      .flatMap((d) => readdirSync(join(root, d)));
    expect(files.filter((f) => !referenced.has(f))).toEqual([]);
    expect(existsSync(join(root, 'tmp')) ? readdirSync(join(root, 'tmp')) : []).toEqual([]);

    if (dp) {
      // The hub charges a silo for every task it issues; the silo charges itself for what it trains and releases. A
      // task the silo never ran (its round closed without it while hubs were being killed) is charged by the hub
      // alone. So, per silo: everything the hub holds from it is in its own ledger (lower bound), and its own ledger
      // holds nothing the hub did not charge (upper bound).
      const privacy = await this.api.call<StudyPrivacyView>('GET', `/api/studies/${this.studyId}/privacy`);
      const closed = (await this.rounds()).filter((r) => r.status === 'closed');
      for (const s of this.silos) {
        const hub = privacy.budgets.find((b) => b.siloId === s.id)!;
        const hubEpsilon = chargedEpsilon(privacy.mechanism!, hub.chargedTrainingRounds, hub.chargedEvaluationReleases);
        const released = (kind: 'train' | 'evaluate') =>
          closed.filter(
            (r) =>
              r.kind === kind &&
              ['uploaded', 'evaluated'].includes(r.participants.find((p) => p.siloId === s.id)?.status ?? ''),
          ).length;
        const heldEpsilon = chargedEpsilon(privacy.mechanism!, released('train'), released('evaluate'));
        const budget = await runAgent(['budget', '--json'], s.env);
        expect(budget.code, budget.stderr).toBe(0);
        const own = (
          JSON.parse(budget.stdout) as { studies: { studyId: string; epsilon: number; rounds: number }[] }
        ).studies.find((x) => x.studyId === this.studyId);
        expect(own, `${s.key} has no ledger line`).toBeDefined();
        expect(own!.rounds, `${s.key}: rounds in its ledger`).toBeGreaterThanOrEqual(released('train'));
        expect(own!.rounds, `${s.key}: rounds in its ledger`).toBeLessThanOrEqual(hub.chargedTrainingRounds);
        expect(own!.epsilon, `${s.key}: ε in its ledger`).toBeGreaterThanOrEqual(heldEpsilon - 1e-9);
        expect(own!.epsilon, `${s.key}: ε in its ledger`).toBeLessThanOrEqual(hubEpsilon + 1e-9);
      }
    }
  }
}

/** A free TCP port on loopback (for the private PostgreSQL cluster). */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => done(port));
    });
  });
}

/**
 * A PostgreSQL cluster of the test's own (never the shared server): initdb + pg_ctl from the installed server
 * binaries, run as the `postgres` user (the server refuses root), on a free loopback port, sockets in its directory.
 */
export class PrivatePostgres {
  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly bin: string,
  ) {}

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  /** The server binaries, or null when none is installed (the caller then says why it skips). */
  static binDir(): string | null {
    const root = '/usr/lib/postgresql';
    if (!existsSync(root)) return null;
    const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a));
    const found = versions.map((v) => join(root, v, 'bin')).find((b) => existsSync(join(b, 'pg_ctl')));
    return found ?? null;
  }

  static async create(parent: string): Promise<PrivatePostgres> {
    const bin = PrivatePostgres.binDir();
    if (!bin) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql');
    const dir = join(parent, 'pg');
    mkdirSync(dir, { recursive: true });
    chmodSync(parent, 0o755);
    execFileSync('chown', ['-R', 'postgres:postgres', dir]);
    const pg = new PrivatePostgres(dir, await freePort(), bin);
    pg.asPostgres(`${bin}/initdb -D ${dir}/data -A trust -U postgres --no-sync >/dev/null`);
    pg.start();
    return pg;
  }

  start(): void {
    this.asPostgres(
      `${this.bin}/pg_ctl -D ${this.dir}/data -l ${this.dir}/log -w -t 30 -o "-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null`,
    );
  }

  /** An immediate stop: the server dies without a checkpoint, as on a crash; open connections are cut. */
  crash(): void {
    this.asPostgres(`${this.bin}/pg_ctl -D ${this.dir}/data -m immediate -w stop >/dev/null`);
  }

  stop(): void {
    try {
      this.asPostgres(`${this.bin}/pg_ctl -D ${this.dir}/data -m fast -w stop >/dev/null`);
    } catch {
      // already stopped
    }
  }

  private asPostgres(command: string): void {
    if (process.getuid?.() === 0) execFileSync('su', ['postgres', '-s', '/bin/sh', '-c', command], { stdio: 'pipe' });
    else execFileSync('/bin/sh', ['-c', command], { stdio: 'pipe' });
  }
}
