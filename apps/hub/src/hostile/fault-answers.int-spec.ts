import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  encodeUpdateFrame,
  float32Bytes,
  sha256Hex,
  SILO_STUDY_API,
  type TasksResponse,
  type SiloTask,
} from '@tessera/protocol';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import { TcpProxy } from '../testing/tcp-proxy.test-util';
import {
  ADMIN,
  api,
  createServerDatabase,
  signIn,
  startTestHub,
  TEST_SERVER_URL,
  type TestHub,
} from '../testing/test-hub.test-util';
import { TestSilo } from '../testing/test-silo.test-util';
import { makeUnwritable } from '../testing/unwritable-dir.test-util';

/**
 * "Try again" versus "refused" (issue 14, findings 14 and 15), against a real hub on a real PostgreSQL reached
 * through a TCP relay the test can cut: a database outage and an unwritable blob store answer 503 with Retry-After
 * (and readiness says why, liveness stays up), and a blob whose bytes no longer match its name is never served.
 */

const EVAL = { kind: 'exact', loss: 0.6, accuracy: 0.7, auc: 0.75, n: 20, positives: 9 } as const;

function updateFrame(task: SiloTask, studyId: string, length: number): Buffer {
  const delta = new Float32Array(length).map((_, i) => (i % 3) * 0.01 - 0.01);
  let sum = 0;
  for (const v of delta) sum += v * v;
  return encodeUpdateFrame(
    {
      studyId,
      round: task.round,
      attempt: task.attempt,
      planHash: task.planHash,
      baseModelHash: task.modelHash,
      numExamples: 100,
      length,
      payloadSha256: sha256Hex(float32Bytes(delta)),
      l2Norm: Math.sqrt(sum),
      evaluation: EVAL,
      privacy: null,
    },
    delta,
  );
}

async function until<T>(probe: () => Promise<T>, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('answers under faults (server database behind a relay)', () => {
  let proxy: TcpProxy;
  let database: Awaited<ReturnType<typeof createServerDatabase>>;
  let hub: TestHub;
  let admin: Record<string, string>;
  let silo: TestSilo;
  let studyId: string;
  let task: SiloTask;

  beforeAll(async () => {
    const server = new URL(TEST_SERVER_URL);
    proxy = await TcpProxy.start({ host: server.hostname, port: Number(server.port || 5432) });
    database = await createServerDatabase();
    const viaProxy = new URL(database.url);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    hub = await startTestHub('server', { databaseUrl: viaProxy.toString() });
    admin = await signIn(hub, ADMIN.username, ADMIN.password);
    silo = await TestSilo.enroll(hub, admin, 'Fault Hospital');
    const plan = heartDiseasePlan([silo.id], {
      participation: { minSilosPerRound: 1, roundDeadlineSeconds: 300, maxRoundRetries: 0, onSiloFailure: 'continue' },
    });
    const created = await api(hub, 'POST', '/api/studies', { headers: admin, json: { plan } });
    studyId = (created.body as { id: string }).id;
    await api(hub, 'POST', `/api/studies/${studyId}/submit`, { headers: admin });
    const planHash = (created.body as { planHash: string }).planHash;
    await silo.call('POST', SILO_STUDY_API.decision(studyId), { planHash, decision: 'approve' });
    expect((await api(hub, 'POST', `/api/studies/${studyId}/start`, { headers: admin })).status).toBe(200);
    const tasks = (await silo.call('GET', `${SILO_STUDY_API.tasks}?wait=5`)).body as TasksResponse;
    task = tasks.tasks[0] as SiloTask;
  });
  afterAll(async () => {
    await proxy?.restore().catch(() => undefined);
    await hub?.stop();
    await database?.drop();
    await proxy?.close();
  });

  it('serves liveness and readiness apart', async () => {
    expect(await api(hub, 'GET', '/health/live')).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(await api(hub, 'GET', '/health/ready')).toMatchObject({
      status: 200,
      body: { info: { database: { status: 'up' }, storage: { status: 'up' } } },
    });
  });

  it('refuses a corrupted model with 500 BLOB_CORRUPTED and an audit record, and serves it again once repaired', async () => {
    const path = join(hub.dataDir, 'blobs', task.modelHash.slice(0, 2), task.modelHash);
    const good = readFileSync(path);
    const bad = Buffer.from(good);
    bad[5]! ^= 0x10;
    writeFileSync(path, bad);
    try {
      const res = await silo.binary('GET', SILO_STUDY_API.blob(task.modelHash));
      expect(res.status).toBe(500);
      const body = silo.json(res.bytes) as { error: string; message: string };
      expect(body.error).toBe('BLOB_CORRUPTED');
      expect(body.message).toContain(task.modelHash);
      const records = await until(
        () =>
          hub.app
            .get(DataSource)
            .query<{ details: { blobSha256: string } }[]>(
              `SELECT details FROM audit_records WHERE action = 'blob.integrity.failed'`,
            ),
        (rows) => rows.length > 0,
      );
      expect(records.map((r) => r.details.blobSha256)).toEqual([task.modelHash]);
    } finally {
      writeFileSync(path, good);
    }
    const repaired = await silo.binary('GET', SILO_STUDY_API.blob(task.modelHash));
    expect(repaired.status).toBe(200);
    expect(sha256Hex(repaired.bytes)).toBe(task.modelHash);
  });

  it('answers 503 STORAGE_UNAVAILABLE to an upload while the blob store is read-only, then accepts it', async () => {
    const length = (await silo.binary('GET', SILO_STUDY_API.blob(task.modelHash))).bytes.length / 4;
    const frame = updateFrame(task, studyId, length);
    const restore = makeUnwritable(join(hub.dataDir, 'blobs'));
    try {
      const ready = await until(
        () => api(hub, 'GET', '/health'),
        (r) => r.status === 503,
      );
      expect(ready.body).toMatchObject({
        error: 'SERVICE_UNAVAILABLE',
        message: 'The hub is not ready: storage down.',
        details: { storage: { status: 'down' } },
      });
      expect((await api(hub, 'GET', '/health/live')).status).toBe(200);
      const refused = await silo.binary('POST', SILO_STUDY_API.update(studyId, task.round), frame);
      expect(refused.status).toBe(503);
      expect(silo.json(refused.bytes)).toMatchObject({ error: 'STORAGE_UNAVAILABLE' });
    } finally {
      restore();
    }
    const accepted = await silo.binary('POST', SILO_STUDY_API.update(studyId, task.round), frame);
    expect(accepted.status, accepted.bytes.toString()).toBe(200);
    expect(
      (
        await until(
          () => api(hub, 'GET', '/health'),
          (r) => r.status === 200,
        )
      ).status,
    ).toBe(200);
  });

  it('answers 503 DATABASE_UNAVAILABLE with Retry-After during a database outage, on every listener, then recovers', async () => {
    await proxy.cut();
    try {
      const people = await api(hub, 'GET', '/api/users', { headers: admin });
      // A valid session stays valid: "try again", never "sign in again".
      expect(people.status).toBe(503);
      expect(people.body).toMatchObject({ error: 'DATABASE_UNAVAILABLE' });
      expect(people.headers.get('retry-after')).toBe('5');
      const login = await api(hub, 'POST', '/api/auth/login', { json: ADMIN });
      expect(login.body).toMatchObject({ error: 'DATABASE_UNAVAILABLE' });
      const siloAnswer = await silo.binary('GET', SILO_STUDY_API.studies);
      expect(siloAnswer.status).toBe(503);
      expect(silo.json(siloAnswer.bytes)).toMatchObject({ error: 'DATABASE_UNAVAILABLE' });
      expect((await api(hub, 'GET', '/health/ready')).status).toBe(503);
      expect((await api(hub, 'GET', '/health/live')).status).toBe(200);
    } finally {
      await proxy.restore();
    }
    const back = await until(
      () => api(hub, 'GET', '/api/users', { headers: admin }),
      (r) => r.status === 200,
    );
    expect(back.status).toBe(200);
    expect((await silo.call('GET', SILO_STUDY_API.studies)).status).toBe(200);
  });
});
