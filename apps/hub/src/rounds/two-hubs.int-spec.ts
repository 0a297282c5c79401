import { SILO_STUDY_API, encodeUpdateFrame, float32Bytes, sha256Hex, type TasksResponse } from '@tessera/protocol';
import { DataSource } from 'typeorm';
import { afterAll, describe, expect, it } from 'vitest';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import type { StudyView } from '../studies/studies.service';
import { ADMIN, api, createServerDatabase, signIn, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { TestSilo } from '../testing/test-silo.test-util';
import { RoundEntity } from '../study-state/round.entity';
import { RoundsService } from './rounds.service';

describe('two hub processes on one database', () => {
  const hubs: TestHub[] = [];
  let drop: (() => Promise<void>) | undefined;
  afterAll(async () => {
    for (const h of hubs.reverse()) await h.stop();
    await drop?.();
  });

  it('never both close a round: the row lock lets exactly one of them aggregate and open the next', async () => {
    const db = await createServerDatabase();
    drop = db.drop;
    const first = await startTestHub('server', { databaseUrl: db.url });
    hubs.push(first);
    // A replica: same database, same blob store and secrets (the data directory stands in for shared storage).
    const second = await startTestHub('server', { databaseUrl: db.url, dataDir: first.dataDir });
    hubs.push(second);
    const admin = await signIn(first, ADMIN.username, ADMIN.password);
    const silos = [await TestSilo.enroll(first, admin, 'Replica A'), await TestSilo.enroll(first, admin, 'Replica B')];
    const plan = heartDiseasePlan(silos.map((s) => s.id));
    plan.participation.roundDeadlineSeconds = 300;
    const study = (await api(first, 'POST', '/api/studies', { headers: admin, json: { plan } })).body as StudyView;
    await api(first, 'POST', `/api/studies/${study.id}/submit`, { headers: admin });
    for (const s of silos)
      await s.call('POST', SILO_STUDY_API.decision(study.id), { planHash: study.planHash, decision: 'approve' });
    await api(first, 'POST', `/api/studies/${study.id}/start`, { headers: admin });
    const task = ((await silos[0]!.call('GET', `${SILO_STUDY_API.tasks}?wait=5`)).body as TasksResponse).tasks[0]!;
    const delta = new Float32Array(14).fill(0.02);
    const frame = encodeUpdateFrame(
      {
        studyId: study.id,
        round: 1,
        attempt: 1,
        planHash: study.planHash,
        baseModelHash: task.modelHash,
        numExamples: 50,
        length: 14,
        payloadSha256: sha256Hex(float32Bytes(delta)),
        l2Norm: Math.sqrt(14 * 0.02 * 0.02),
        evaluation: { kind: 'exact', loss: 0.6, accuracy: 0.7, auc: null, n: 10, positives: 5 },
        privacy: null,
      },
      delta,
    );
    const round1 = await first.app
      .get(DataSource)
      .getRepository(RoundEntity)
      .findOneByOrFail({ studyId: study.id, number: 1 });
    // Both replicas are told to close round 1 at the same moment as the last upload lands (their timers race too).
    await silos[0]!.binary('POST', SILO_STUDY_API.update(study.id, 1), frame);
    await Promise.all([
      silos[1]!.binary('POST', SILO_STUDY_API.update(study.id, 1), frame),
      first.app.get(RoundsService).closeRound(round1.id),
      second.app.get(RoundsService).closeRound(round1.id),
    ]);
    await Promise.all([
      first.app.get(RoundsService).closeRound(round1.id),
      second.app.get(RoundsService).closeRound(round1.id),
    ]);
    await new Promise((r) => setTimeout(r, 1500)); // let both replicas' timers run as well
    const rounds = await first.app
      .get(DataSource)
      .getRepository(RoundEntity)
      .find({ where: { studyId: study.id } });
    expect(rounds.map((r) => [r.number, r.attempt, r.status]).sort()).toEqual([
      [1, 1, 'closed'],
      [2, 1, 'open'],
    ]);
    const closes = (
      (await api(first, 'GET', `/api/audit/events?studyId=${study.id}&action=round.closed`, { headers: admin }))
        .body as {
        events: unknown[];
      }
    ).events;
    expect(closes).toHaveLength(1);
  });
});
