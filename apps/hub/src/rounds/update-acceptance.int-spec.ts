import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifyBundle, verifyReceipt } from '@tessera/audit';
import {
  encodeUpdateFrame,
  float32Bytes,
  MAX_UPDATE_HEADER_BYTES,
  sha256Hex,
  SILO_STUDY_API,
  type SiloTask,
  type TasksResponse,
  type UpdateHeader,
  type UpdateReceipt,
} from '@tessera/protocol';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditExportService } from '../audit/audit-export.service';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import type { StudyView } from '../studies/studies.service';
import { ADMIN, DATABASE_KINDS, api, signIn, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { TestSilo } from '../testing/test-silo.test-util';
import { OrphanBlobSweepService } from './orphan-blob-sweep.service';
import type { RoundView } from './rounds-query.service';

const EVAL = { kind: 'exact', loss: 0.6, accuracy: 0.7, auc: 0.75, n: 20, positives: 9 } as const;

type FrameHeader = Partial<UpdateHeader> & Pick<UpdateHeader, 'studyId' | 'round' | 'planHash' | 'baseModelHash'>;

function frame(header: FrameHeader, delta: Float32Array): Buffer {
  let s = 0;
  for (const x of delta) s += x * x;
  return encodeUpdateFrame(
    {
      attempt: 1,
      numExamples: 100,
      length: delta.length,
      payloadSha256: sha256Hex(float32Bytes(delta)),
      l2Norm: Math.sqrt(s),
      evaluation: EVAL,
      privacy: null,
      ...header,
    },
    delta,
  );
}

/** Every file in the blob store: committed blobs and staged bytes. */
/** A frame whose prefix declares `headerLength` header bytes, followed by 1 KiB of filler (never a valid header). */
function framePrefixed(headerLength: number): Buffer {
  const prefix = Buffer.alloc(8);
  prefix.write('TSU1', 0, 'ascii');
  prefix.writeUInt32LE(headerLength, 4);
  return Buffer.concat([prefix, Buffer.alloc(1024, 0x7b)]);
}

function blobFiles(dataDir: string): string[] {
  const root = join(dataDir, 'blobs');
  return readdirSync(root).flatMap((d) => readdirSync(join(root, d)).map((f) => `${d}/${f}`));
}

async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe.each(DATABASE_KINDS)('update acceptance on the %s database', (kind) => {
  let hub: TestHub;
  let admin: Record<string, string>;
  let silos: TestSilo[];
  let studyId: string;
  let task: SiloTask;
  let delta: Float32Array;
  let base: FrameHeader;

  beforeAll(async () => {
    hub = await startTestHub(kind);
    admin = await signIn(hub, ADMIN.username, ADMIN.password);
    silos = [];
    for (const name of ['North', 'South', 'East', 'West'])
      silos.push(await TestSilo.enroll(hub, admin, `${name} ${kind}`));
    const plan = heartDiseasePlan(
      silos.map((s) => s.id),
      {
        participation: { minSilosPerRound: 2, roundDeadlineSeconds: 60, maxRoundRetries: 0, onSiloFailure: 'continue' },
      },
    );
    plan.training.rounds = 2;
    const study = (await api(hub, 'POST', '/api/studies', { headers: admin, json: { plan } })).body as StudyView;
    studyId = study.id;
    await api(hub, 'POST', `/api/studies/${studyId}/submit`, { headers: admin });
    for (const s of silos) {
      const r = await s.call('POST', SILO_STUDY_API.decision(studyId), {
        planHash: study.planHash,
        decision: 'approve',
      });
      expect(r.status).toBe(200);
    }
    expect((await api(hub, 'POST', `/api/studies/${studyId}/start`, { headers: admin })).status).toBe(200);
    task = ((await silos[0]!.call('GET', `${SILO_STUDY_API.tasks}?wait=5`)).body as TasksResponse).tasks[0]!;
    base = { studyId, round: 1, planHash: task.planHash, baseModelHash: task.modelHash };
    delta = new Float32Array(14).map((_, i) => (i % 3) * 0.01 - 0.01);
  }, 60_000);
  afterAll(async () => {
    await hub?.dispose();
  });

  const upload = (silo: TestSilo, round: number, body: Buffer) =>
    silo.binary('POST', SILO_STUDY_API.update(studyId, round), body);
  const errorOf = (res: { bytes: Buffer }) => (JSON.parse(res.bytes.toString('utf8')) as { error: string }).error;

  it('leaves no blob behind for any refused upload, including one refused after its bytes streamed', async () => {
    const before = blobFiles(hub.dataDir);
    const cases: [string, Buffer, number, string][] = [
      [
        'a privacy report in a study without DP',
        frame({ ...base, privacy: fakeSpend() }, delta),
        400,
        'UPDATE_MALFORMED',
      ],
      ['a record count of 2^31', frame({ ...base, numExamples: 2 ** 31 }, delta), 400, 'UPDATE_MALFORMED'],
      ['a truncated payload', frame(base, delta).subarray(0, 120), 400, 'UPDATE_MALFORMED'],
      [
        'a payload that fails its hash',
        frame({ ...base, payloadSha256: 'cd'.repeat(32) }, delta),
        400,
        'UPDATE_MALFORMED',
      ],
      ['a declared norm that is wrong', frame({ ...base, l2Norm: 7 }, delta), 400, 'UPDATE_MALFORMED'],
      // The header's length is checked before a byte of it is buffered or parsed (MAX_UPDATE_HEADER_BYTES, 64 KiB).
      ['a header one byte over 64 KiB', framePrefixed(MAX_UPDATE_HEADER_BYTES + 1), 400, 'UPDATE_MALFORMED'],
      ['a header length of 4 GiB - 1', framePrefixed(0xffffffff), 400, 'UPDATE_MALFORMED'],
      ['a header length of 0', framePrefixed(0), 400, 'UPDATE_MALFORMED'],
    ];
    for (const [what, body, status, code] of cases) {
      const res = await upload(silos[3]!, 1, body);
      expect([what, res.status, errorOf(res)]).toEqual([what, status, code]);
    }
    // Accepted once; a different update for the same round is refused after streaming, and leaves nothing.
    expect((await upload(silos[3]!, 1, frame(base, delta))).status).toBe(200);
    const withAccepted = blobFiles(hub.dataDir);
    expect(withAccepted.length).toBe(before.length + 1);
    const other = await upload(
      silos[3]!,
      1,
      frame(
        base,
        delta.map((v) => v * 3),
      ),
    );
    expect([other.status, errorOf(other)]).toEqual([409, 'DUPLICATE_UPDATE']);
    expect(blobFiles(hub.dataDir)).toEqual(withAccepted);
  });

  it('accepts concurrent uploads with one record each, and answers a re-send after the close with the original receipt', async () => {
    const results = await Promise.all(silos.slice(0, 3).map((s) => upload(s, 1, frame(base, delta))));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    const receipts = results.map((r) => JSON.parse(r.bytes.toString('utf8')) as UpdateReceipt);
    const round2 = await waitFor(async () => {
      const rounds = (await api(hub, 'GET', `/api/studies/${studyId}/rounds`, { headers: admin })).body as RoundView[];
      return rounds.find((r) => r.number === 2);
    });
    expect(round2.status).toBe('open');

    // The agent killed before it read its receipt sends the same release again: the same signed receipt, bytes equal.
    const again = await upload(silos[1]!, 1, frame(base, delta));
    expect(again.status).toBe(200);
    expect(JSON.parse(again.bytes.toString('utf8'))).toEqual(receipts[1]);
    const { publicKeyPem } = (await api(hub, 'GET', '/api/audit/public-key', { headers: admin })).body as {
      publicKeyPem: string;
    };
    expect(verifyReceipt(receipts[1]!.signature, publicKeyPem)).toMatchObject({ ok: true });

    // A different update for the closed round: refused as a duplicate, nothing stored, nothing recorded as accepted.
    const files = blobFiles(hub.dataDir);
    const different = await upload(
      silos[1]!,
      1,
      frame(
        base,
        delta.map((v) => v / 2),
      ),
    );
    expect([different.status, errorOf(different)]).toEqual([409, 'DUPLICATE_UPDATE']);
    expect(blobFiles(hub.dataDir)).toEqual(files);

    // Each accepted update has exactly one record; the export states the state and verifies.
    const db = hub.app.get(DataSource);
    const accepted = await db.query<{ silo: string; n: number }[]>(
      `SELECT subject->>'siloId' AS silo, count(*)::int AS n FROM audit_records
        WHERE action = 'round.update.accepted' AND study_id = $1 AND (details->>'round')::int = 1
        GROUP BY 1 ORDER BY 1`,
      [studyId],
    );
    expect(accepted.map((a) => a.n)).toEqual([1, 1, 1, 1]);
    const bundle = await hub.app.get(AuditExportService).exportBundle({ studyId });
    const verified = verifyBundle(bundle);
    expect(verified.problems).toEqual([]);
    // 4 accepted updates, round 1's close and round 2's opening (a study without DP charges no privacy).
    expect(verified.summary?.stateItems).toBe(6);
  });

  it('fails verification naming an accepted update that has no audit record (the old crash window)', async () => {
    const db = hub.app.get(DataSource);
    // The state a hub killed between commit and record used to leave: a participant row accepted, no record.
    const bogus = sha256Hex(randomBytes(32));
    await db.query(
      `UPDATE round_participants p SET status = 'uploaded', update_hash = $1, reported_at = now()
         FROM rounds r WHERE r.id = p.round_id AND r.study_id = $2 AND r.number = 2 AND p.silo_id = $3`,
      [bogus, studyId, silos[2]!.id],
    );
    const bundle = await hub.app.get(AuditExportService).exportBundle({ studyId });
    const result = verifyBundle(bundle);
    expect(result.ok).toBe(false);
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]).toMatchObject({ code: 'STATE_UNRECORDED' });
    expect(result.problems[0]!.message).toContain(
      `update.accepted of study ${studyId} silo ${silos[2]!.id} round 2 attempt 1`,
    );
    await db.query(
      `UPDATE round_participants p SET status = 'waiting', update_hash = NULL, reported_at = NULL
         FROM rounds r WHERE r.id = p.round_id AND r.study_id = $1 AND r.number = 2 AND p.silo_id = $2`,
      [studyId, silos[2]!.id],
    );
    expect(verifyBundle(await hub.app.get(AuditExportService).exportBundle({ studyId })).ok).toBe(true);
  });

  it('refuses a late upload and an update for a round not yet open, storing nothing', async () => {
    const files = blobFiles(hub.dataDir);
    const future = await upload(silos[0]!, 3, frame({ ...base, round: 3 }, delta));
    expect([future.status, errorOf(future)]).toEqual([409, 'WRONG_ROUND']);
    // Round 2's deadline passes (moved by the test) before silo 3 sends anything: its update is late.
    await hub.app
      .get(DataSource)
      .query(`UPDATE rounds SET deadline_at = now() - interval '1 second' WHERE study_id = $1 AND number = 2`, [
        studyId,
      ]);
    const round2 = ((await silos[3]!.call('GET', `${SILO_STUDY_API.tasks}?wait=0`)).body as TasksResponse).tasks;
    const model2 = round2[0]?.modelHash ?? base.baseModelHash;
    const late = await upload(silos[3]!, 2, frame({ ...base, round: 2, baseModelHash: model2 }, delta));
    expect([late.status, errorOf(late)]).toEqual([409, 'ROUND_CLOSED']);
    expect(blobFiles(hub.dataDir)).toEqual(files);
  });

  it('sweeps unreferenced blobs older than the grace period, keeps young ones and every referenced blob', async () => {
    const root = join(hub.dataDir, 'blobs');
    const plant = (ageSeconds: number): string => {
      const bytes = randomBytes(64);
      const hash = sha256Hex(bytes);
      mkdirSync(join(root, hash.slice(0, 2)), { recursive: true });
      writeFileSync(join(root, hash.slice(0, 2), hash), bytes);
      const t = new Date(Date.now() - ageSeconds * 1000);
      utimesSync(join(root, hash.slice(0, 2), hash), t, t);
      return `${hash.slice(0, 2)}/${hash}`;
    };
    const old = plant(2 * 3600);
    const young = plant(60);
    const staged = join(root, 'tmp', 'stale-upload');
    writeFileSync(staged, randomBytes(10));
    const t = new Date(Date.now() - 2 * 3600 * 1000);
    utimesSync(staged, t, t);
    const before = blobFiles(hub.dataDir);
    const result = await hub.app.get(OrphanBlobSweepService).sweep();
    expect(result).toMatchObject({ removed: 1, removedStaging: 1 });
    expect(result.keptYoung).toBeGreaterThanOrEqual(1);
    const after = blobFiles(hub.dataDir);
    expect(after).not.toContain(old);
    expect(after).not.toContain('tmp/stale-upload');
    expect(after).toContain(young);
    expect(after.length).toBe(before.length - 2);
    // The published model is still served.
    const model = await silos[0]!.binary('GET', SILO_STUDY_API.blob(task.modelHash));
    expect(model.status).toBe(200);
  });
});

function fakeSpend(): UpdateHeader['privacy'] {
  return {
    mechanism: 'dp-sgd',
    unit: 'record',
    noiseMultiplier: 1,
    clipNorm: 1,
    samplingRate: 0.1,
    steps: 10,
    delta: 1e-5,
    trainingRounds: 1,
    evaluationReleases: 0,
    epsilonRound: 1,
    epsilonCumulative: 1,
    accountant: 'rdp',
  };
}
