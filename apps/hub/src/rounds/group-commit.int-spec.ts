import { verifyBundle, verifyReceipt } from '@tessera/audit';
import {
  encodeUpdateFrame,
  float32Bytes,
  sha256Hex,
  SILO_STUDY_API,
  type SiloTask,
  type TasksResponse,
  type UpdateReceipt,
} from '@tessera/protocol';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AuditExportService } from '../audit/audit-export.service';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import type { StudyView } from '../studies/studies.service';
import { ADMIN, DATABASE_KINDS, api, signIn, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { TestSilo } from '../testing/test-silo.test-util';
import { RoundsRepository } from './rounds.repository';
import { UpdateAcceptanceService } from './update-acceptance.service';

const EVAL = { kind: 'exact', loss: 0.6, accuracy: 0.7, auc: 0.75, n: 20, positives: 9 } as const;
/** Silos that upload; one more is invited and never uploads, so round 1 stays open through the suite. */
const UPLOADERS = 8;

/**
 * Group commit of acceptances (ADR 0022) on the real databases: the batch transaction's SQL (one round lock, a
 * savepoint per upload, the audit chain appended per upload) and the audit chain it leaves.
 */
describe.each(DATABASE_KINDS)('acceptances sharing transactions on the %s database', (kind) => {
  let hub: TestHub;
  let silos: TestSilo[];
  let studyId: string;
  let roundId: string;
  let task: SiloTask;

  beforeAll(async () => {
    hub = await startTestHub(kind);
    const admin = await signIn(hub, ADMIN.username, ADMIN.password);
    silos = [];
    for (let i = 0; i <= UPLOADERS; i += 1) silos.push(await TestSilo.enroll(hub, admin, `Batch ${i + 1} ${kind}`));
    const plan = heartDiseasePlan(
      silos.map((s) => s.id),
      {
        participation: {
          minSilosPerRound: 2,
          roundDeadlineSeconds: 600,
          maxRoundRetries: 0,
          onSiloFailure: 'continue',
        },
      },
    );
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
    const [round] = await hub.app
      .get(DataSource)
      .query<{ id: string }[]>(`SELECT id FROM rounds WHERE study_id = $1 AND number = 1`, [studyId]);
    roundId = round!.id;
  }, 120_000);
  afterAll(async () => {
    await hub?.dispose();
  });

  /** Silo i's update: its own values, so every upload has its own blob. */
  const frameOf = (i: number): Buffer => {
    const delta = new Float32Array(14).map((_, j) => ((i + 1) * (j + 1)) / 1000);
    let s = 0;
    for (const x of delta) s += x * x;
    return encodeUpdateFrame(
      {
        studyId,
        round: 1,
        attempt: 1,
        planHash: task.planHash,
        baseModelHash: task.modelHash,
        numExamples: 100 + i,
        length: delta.length,
        payloadSha256: sha256Hex(float32Bytes(delta)),
        l2Norm: Math.sqrt(s),
        evaluation: EVAL,
        privacy: null,
      },
      delta,
    );
  };
  const upload = (i: number) => silos[i]!.binary('POST', SILO_STUDY_API.update(studyId, 1), frameOf(i));
  const errorOf = (res: { bytes: Buffer }) => (JSON.parse(res.bytes.toString('utf8')) as { error: string }).error;

  it('a savepoint rolls back only what its work wrote, also after a database error; the transaction goes on', async () => {
    const repository = hub.app.get(RoundsRepository);
    const done = new Error('roll the test transaction back');
    const fields = (hash: string) => ({
      updateHash: hash,
      updateBytes: '1',
      numExamples: 1,
      l2Norm: 1,
      trainLoss: null,
      evaluation: null,
      privacy: null,
      reportedAt: new Date(),
    });
    const seen: { outcomes?: boolean[]; brokenError?: string; statuses?: (string | undefined)[] } = {};
    await repository
      .inTransaction(async (tx) => {
        await tx.lockRound(roundId);
        const failed = await tx.savepoint(async () => {
          await tx.recordUpload(roundId, silos[0]!.id, fields('a'.repeat(64)));
          throw new Error('refused after the row was written');
        });
        // A statement error aborts a PostgreSQL transaction; here only the savepoint's part of it.
        const broken = await tx.savepoint(async () => {
          await tx.recordUpload(roundId, silos[1]!.id, fields('b'.repeat(64)));
          await tx.open.query('SELECT 1 / 0');
        });
        const kept = await tx.savepoint(() => tx.recordUpload(roundId, silos[2]!.id, fields('c'.repeat(64))));
        const rows = await Promise.all([0, 1, 2].map((i) => tx.participant(roundId, silos[i]!.id)));
        seen.outcomes = [failed.ok, broken.ok, kept.ok];
        seen.brokenError = broken.ok ? '' : String(broken.error);
        seen.statuses = rows.map((r) => r?.status);
        throw done;
      })
      .catch((err: unknown) => {
        if (err !== done) throw err;
      });
    expect(seen).toEqual({
      outcomes: [false, false, true],
      brokenError: expect.stringContaining('division by zero') as unknown,
      statuses: ['waiting', 'waiting', 'uploaded'],
    });
    // The whole test transaction rolled back: nothing of it stayed.
    const after = await hub.app
      .get(DataSource)
      .query<{ status: string }[]>(`SELECT status FROM round_participants WHERE round_id = $1`, [roundId]);
    expect(after.map((r) => r.status)).toEqual(silos.map(() => 'waiting'));
  });

  it('concurrent uploads are accepted in fewer transactions than uploads, one record each; the chain verifies', async () => {
    const repository = hub.app.get(RoundsRepository);
    const acceptance = hub.app.get(UpdateAcceptanceService);
    const transactions = vi.spyOn(repository, 'inTransaction');
    let receipts: UpdateReceipt[] = [];
    try {
      let sends: ReturnType<typeof upload>[];
      if (kind === 'server') {
        // The round's row held by another transaction (as the closer or a slow batch would): the uploads queue.
        let release!: () => void;
        const released = new Promise<void>((resolve) => (release = resolve));
        let locked!: () => void;
        const isLocked = new Promise<void>((resolve) => (locked = resolve));
        const holder = repository.inTransaction(async (tx) => {
          await tx.lockRound(roundId);
          locked();
          await released;
        });
        await isLocked;
        sends = silos.slice(1, UPLOADERS).map((_, i) => upload(i + 1));
        for (const end = Date.now() + 30_000; acceptance.pendingAcceptances(roundId) < UPLOADERS - 1;) {
          if (Date.now() > end) throw new Error(`${acceptance.pendingAcceptances(roundId)} uploads queued`);
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        release();
        await holder;
      } else {
        // One connection (ADR 0002): a held transaction would also hold the reads before it; the uploads just race.
        sends = silos.slice(1, UPLOADERS).map((_, i) => upload(i + 1));
      }
      const results = await Promise.all(sends);
      expect(results.map((r) => r.status)).toEqual(results.map(() => 200));
      const acceptances = transactions.mock.calls.length - (kind === 'server' ? 1 : 0);
      if (kind === 'server') expect(acceptances).toBe(2);
      else expect(acceptances).toBeLessThanOrEqual(UPLOADERS - 1);
      const { publicKeyPem } = (
        await api(hub, 'GET', '/api/audit/public-key', { headers: await signIn(hub, ADMIN.username, ADMIN.password) })
      ).body as { publicKeyPem: string };
      receipts = results.map((r) => JSON.parse(r.bytes.toString('utf8')) as UpdateReceipt);
      for (const receipt of receipts)
        expect(verifyReceipt(receipt.signature, publicKeyPem)).toMatchObject({ ok: true });
    } finally {
      transactions.mockRestore();
    }

    // A different update from silo 1 is refused; its identical re-send answers with the original receipt.
    const other = await silos[1]!.binary('POST', SILO_STUDY_API.update(studyId, 1), frameOf(99));
    expect([other.status, errorOf(other)]).toEqual([409, 'DUPLICATE_UPDATE']);
    const again = await upload(2);
    expect([again.status, JSON.parse(again.bytes.toString('utf8'))]).toEqual([200, receipts[1]]);
    const db = hub.app.get(DataSource);
    const accepted = await db.query<{ silo: string; n: number }[]>(
      `SELECT subject->>'siloId' AS silo, count(*)::int AS n FROM audit_records
        WHERE action = 'round.update.accepted' AND study_id = $1 GROUP BY 1`,
      [studyId],
    );
    expect(accepted.map((a) => a.n)).toEqual(silos.slice(1, UPLOADERS).map(() => 1));
    const uploaded = await db.query<{ n: number }[]>(
      `SELECT count(*)::int AS n FROM round_participants WHERE round_id = $1 AND status = 'uploaded'`,
      [roundId],
    );
    expect(uploaded[0]!.n).toBe(UPLOADERS - 1);
    const verified = verifyBundle(await hub.app.get(AuditExportService).exportBundle({ studyId }));
    expect(verified.problems).toEqual([]);
  });
});
