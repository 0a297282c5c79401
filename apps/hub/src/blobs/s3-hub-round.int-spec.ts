import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import {
  SILO_STUDY_API,
  encodeUpdateFrame,
  float32Bytes,
  sha256Hex,
  type RoundView,
  type SiloTask,
  type TasksResponse,
  type UpdateHeader,
} from '@tessera/protocol';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { float32FromBytes } from '../rounds/model-math';
import { RoundEntity } from '../study-state/round.entity';
import { RoundsService } from '../rounds/rounds.service';
import { OrphanBlobSweepService } from '../rounds/orphan-blob-sweep.service';
import { StudyEntity } from '../study-state/study.entity';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import type { StudyView } from '../studies/studies.service';
import { ADMIN, api, signIn, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { TestSilo } from '../testing/test-silo.test-util';
import { BlobStore } from './blob-store';
import { S3BlobStore } from './s3-blob-store';
import { s3SuiteAvailability, startS3TestServer, type S3TestServer } from './s3-test-server.test-util';

const availability = s3SuiteAvailability();
if (!availability.run) console.warn(`skipping the hub round on the S3 blob store: ${availability.reason}`);

/** The hub reads S3 credentials from the AWS SDK chain, as in production: here its environment variables. */
const CREDENTIAL_VARIABLES = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE'];

function updateFrame(
  study: StudyView,
  task: SiloTask,
  length: number,
  value: number,
  evaluation: UpdateHeader['evaluation'] = { kind: 'exact', loss: 0.6, accuracy: 0.7, auc: null, n: 10, positives: 5 },
): Buffer {
  const delta = new Float32Array(length).fill(value);
  return encodeUpdateFrame(
    {
      studyId: study.id,
      round: 1,
      attempt: 1,
      planHash: study.planHash,
      baseModelHash: task.modelHash,
      numExamples: evaluation ? 50 : null,
      length: delta.length,
      payloadSha256: sha256Hex(float32Bytes(delta)),
      l2Norm: Math.sqrt(delta.length * value * value),
      evaluation,
      privacy: null,
    },
    delta,
  );
}

/** The hub's environment for a bucket of the test server (credentials come from the process environment). */
function s3Env(server: S3TestServer, bucket: string): Record<string, string> {
  return {
    TESSERA_BLOB_STORE: 's3',
    TESSERA_S3_BUCKET: bucket,
    TESSERA_S3_REGION: server.region,
    TESSERA_S3_ENDPOINT: server.endpoint,
    TESSERA_S3_FORCE_PATH_STYLE: 'true',
    TESSERA_S3_PREFIX: 'hub',
  };
}

async function objectKeys(client: S3Client, bucket: string): Promise<string[]> {
  const out = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
  return (out.Contents ?? []).map((o) => o.Key!);
}

describe.skipIf(!availability.run)('a hub round with its blobs in S3 (Swift s3api on loopback)', () => {
  let server: S3TestServer;
  let hub: TestHub | undefined;
  const saved = new Map<string, string | undefined>();

  beforeAll(async () => {
    server = await startS3TestServer();
    for (const name of CREDENTIAL_VARIABLES) saved.set(name, process.env[name]);
    delete process.env.AWS_SESSION_TOKEN;
    delete process.env.AWS_PROFILE;
    process.env.AWS_ACCESS_KEY_ID = server.credentials.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = server.credentials.secretAccessKey;
  }, 240_000);
  afterAll(async () => {
    await hub?.dispose();
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await server?.stop();
  });

  it('serves the model from S3, takes the updates into it, aggregates them and keeps nothing on local disk', async () => {
    const bucket = await server.createBucket();
    hub = await startTestHub('server', { env: s3Env(server, bucket) });
    expect(hub.app.get(BlobStore)).toBeInstanceOf(S3BlobStore);
    expect((await api(hub, 'GET', '/health/ready')).status).toBe(200);

    const admin = await signIn(hub, ADMIN.username, ADMIN.password);
    const silos = [await TestSilo.enroll(hub, admin, 'S3 A'), await TestSilo.enroll(hub, admin, 'S3 B')];
    const plan = heartDiseasePlan(silos.map((s) => s.id));
    plan.participation.roundDeadlineSeconds = 300;
    const study = (await api(hub, 'POST', '/api/studies', { headers: admin, json: { plan } })).body as StudyView;
    await api(hub, 'POST', `/api/studies/${study.id}/submit`, { headers: admin });
    for (const s of silos) {
      await s.call('POST', SILO_STUDY_API.decision(study.id), { planHash: study.planHash, decision: 'approve' });
    }
    await api(hub, 'POST', `/api/studies/${study.id}/start`, { headers: admin });

    const task = ((await silos[0]!.call('GET', `${SILO_STUDY_API.tasks}?wait=5`)).body as TasksResponse).tasks[0]!;
    const model = await silos[0]!.binary('GET', SILO_STUDY_API.blob(task.modelHash));
    expect(model.status).toBe(200);
    expect(sha256Hex(model.bytes)).toBe(task.modelHash);

    const length = model.bytes.length / Float32Array.BYTES_PER_ELEMENT;
    const frames = [updateFrame(study, task, length, 0.02), updateFrame(study, task, length, 0.04)];
    for (const [i, s] of silos.entries()) {
      const res = await s.binary('POST', SILO_STUDY_API.update(study.id, 1), frames[i]);
      expect(res.status, res.bytes.toString()).toBe(200);
    }
    const db = hub.app.get(DataSource);
    const round1 = await db.getRepository(RoundEntity).findOneByOrFail({ studyId: study.id, number: 1 });
    await hub.app.get(RoundsService).closeRound(round1.id);
    // The close may be finishing in the background (the last upload starts one too): wait for its outcome.
    const deadline = Date.now() + 60_000;
    let status = '';
    while (Date.now() < deadline) {
      status = (await db.getRepository(RoundEntity).findOneByOrFail({ id: round1.id })).status;
      if (status === 'closed') break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toBe('closed');
    const current = (await db.getRepository(StudyEntity).findOneByOrFail({ id: study.id })).currentModelHash!;
    expect(current).not.toBe(task.modelHash);

    // Every blob the round produced is an object under the prefix, verified on read; none is on local disk.
    const keys = await objectKeys(server.client(), bucket);
    for (const hash of [task.modelHash, current, ...frames.map((f) => sha256Hex(f))]) {
      expect(keys).toContain(`hub/blobs/${hash}`);
      await hub.app.get(BlobStore).verify(hash);
    }
    expect(keys.filter((k) => !k.startsWith('hub/blobs/'))).toEqual([]);
    expect(existsSync(join(hub.dataDir, 'blobs'))).toBe(false);

    // The orphan sweep lists the bucket: everything is referenced, nothing is removed.
    const swept = await hub.app.get(OrphanBlobSweepService).sweep();
    expect(swept.examined).toBe(keys.length);
    expect(swept.removed).toBe(0);
  });

  it('aggregates a coordinate median blockwise from ranged reads of the bucket, and flags the ×10 update', async () => {
    await hub?.dispose();
    // 5 updates of the 14-parameter model do not fit 320 bytes in memory; blocks of 4 coordinates do. Five silos, as
    // screening with the small-sample spread cannot single out one update of three (docs/aggregation.md).
    const env = { TESSERA_AGGREGATION_MEMORY: '320', TESSERA_AGGREGATION_BLOCK_PARAMETERS: '4' };
    hub = await startTestHub('server', { env: { ...s3Env(server, await server.createBucket()), ...env } });
    const admin = await signIn(hub, ADMIN.username, ADMIN.password);
    const silos = [];
    for (const name of ['S3 median A', 'S3 median B', 'S3 median C', 'S3 median D', 'S3 median E'])
      silos.push(await TestSilo.enroll(hub, admin, name));
    const plan = heartDiseasePlan(
      silos.map((s) => s.id),
      {
        release: { evaluation: { mode: 'none' }, trainingExamples: 'none' },
        aggregation: { aggregator: { kind: 'coordinate-median' } },
        screening: { threshold: 3.5, exclude: false },
      },
    );
    plan.training.serverOptimizer = { kind: 'fedavg', learningRate: 1 };
    plan.participation = {
      minSilosPerRound: 5,
      roundDeadlineSeconds: 300,
      maxRoundRetries: 0,
      onSiloFailure: 'continue',
    };
    const created = await api(hub, 'POST', '/api/studies', { headers: admin, json: { plan } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const study = created.body as StudyView;
    await api(hub, 'POST', `/api/studies/${study.id}/submit`, { headers: admin });
    for (const s of silos) {
      await s.call('POST', SILO_STUDY_API.decision(study.id), { planHash: study.planHash, decision: 'approve' });
    }
    await api(hub, 'POST', `/api/studies/${study.id}/start`, { headers: admin });
    const task = ((await silos[0]!.call('GET', `${SILO_STUDY_API.tasks}?wait=5`)).body as TasksResponse).tasks[0]!;
    const global = float32FromBytes((await silos[0]!.binary('GET', SILO_STUDY_API.blob(task.modelHash))).bytes);
    const values = [0.03, 0.035, 0.04, 0.045, 0.4];
    for (const [i, s] of silos.entries()) {
      const res = await s.binary(
        'POST',
        SILO_STUDY_API.update(study.id, 1),
        updateFrame(study, task, global.length, values[i]!, null),
      );
      expect(res.status, res.bytes.toString()).toBe(200);
    }
    const deadline = Date.now() + 60_000;
    let round1: RoundView | undefined;
    while (Date.now() < deadline && round1?.status !== 'closed') {
      const rounds = (await api(hub, 'GET', `/api/studies/${study.id}/rounds`, { headers: admin })).body as RoundView[];
      round1 = rounds.find((r) => r.number === 1);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(round1?.status).toBe('closed');
    const db = hub.app.get(DataSource);
    const [row] = await db.query<{ record: { step: string; mode: string } }[]>(
      `SELECT summary->'aggregationTrace'->0->'record' AS record FROM rounds WHERE study_id = $1 AND number = 1`,
      [study.id],
    );
    expect(row!.record).toMatchObject({ step: 'memory', mode: 'blockwise' });
    const flagged = round1!.summary!.screening!.updates.filter((u) => u.flags.length > 0);
    expect(flagged.map((u) => [u.siloId, u.flags.map((f) => f.statistic)])).toEqual([[silos[4]!.id, ['norm']]]);
    // The next model is the global one plus the median, 0.04, in every coordinate.
    const next = (await db.getRepository(StudyEntity).findOneByOrFail({ id: study.id })).currentModelHash!;
    const model = float32FromBytes((await silos[0]!.binary('GET', SILO_STUDY_API.blob(next))).bytes);
    model.forEach((x, i) => expect(x).toBeCloseTo(global[i]! + 0.04, 6));
  }, 120_000);
});
