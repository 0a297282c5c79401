import { randomBytes } from 'node:crypto';
import { encodeUpdateFrame, float32Bytes, sha256Hex, SILO_STUDY_API, type TasksResponse } from '@tessera/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { heartDiseasePlan } from './heart-disease-plan';
import type { StudyView } from './studies.service';
import { ADMIN, api, DATABASE_KINDS, signIn, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { TestSilo } from '../testing/test-silo.test-util';

/** The hub's error code in an answer's body (`{ error: CODE, message }`), JSON or raw bytes. */
function codeOf(body: unknown): string | undefined {
  if (Buffer.isBuffer(body)) return (JSON.parse(body.toString('utf8')) as { error?: string }).error;
  return (body as { error?: string }).error;
}

/**
 * What a silo can reach of other studies (threat model S10): a silo never learns of a study it is not invited to,
 * cannot report into a study it no longer takes part in, and downloads only models published to it.
 */
describe.each(DATABASE_KINDS)('a silo outside a study (%s database)', (kind) => {
  let hub: TestHub;
  let admin: Record<string, string>;
  let insiders: TestSilo[];
  let outsider: TestSilo;
  let study: StudyView;
  let modelHash: string;

  beforeAll(async () => {
    hub = await startTestHub(kind);
    admin = await signIn(hub, ADMIN.username, ADMIN.password);
    insiders = [
      await TestSilo.enroll(hub, admin, 'Inside A'),
      await TestSilo.enroll(hub, admin, 'Inside B'),
      await TestSilo.enroll(hub, admin, 'Inside C'),
    ];
    outsider = await TestSilo.enroll(hub, admin, 'Outside');
    const plan = heartDiseasePlan(insiders.map((s) => s.id));
    plan.participation.roundDeadlineSeconds = 300;
    plan.participation.onSiloFailure = 'continue';
    study = (await api(hub, 'POST', '/api/studies', { headers: admin, json: { plan } })).body as StudyView;
    await api(hub, 'POST', `/api/studies/${study.id}/submit`, { headers: admin });
    for (const s of insiders) {
      await s.call('POST', SILO_STUDY_API.decision(study.id), { planHash: study.planHash, decision: 'approve' });
    }
    expect((await api(hub, 'POST', `/api/studies/${study.id}/start`, { headers: admin })).status).toBe(200);
    const tasks = (await insiders[0]!.call('GET', `${SILO_STUDY_API.tasks}?wait=5`)).body as TasksResponse;
    modelHash = tasks.tasks[0]!.modelHash;
  });
  afterAll(() => hub.dispose());

  it('does not list, show or offer tasks of a study the silo is not invited to', async () => {
    const listed = (await outsider.call('GET', SILO_STUDY_API.studies)).body as
      { id: string }[] | { studies: { id: string }[] };
    const ids = (Array.isArray(listed) ? listed : listed.studies).map((s) => s.id);
    expect(ids).not.toContain(study.id);
    expect(((await outsider.call('GET', `${SILO_STUDY_API.tasks}?wait=0`)).body as TasksResponse).tasks).toEqual([]);
    const decided = await outsider.call('POST', SILO_STUDY_API.decision(study.id), {
      planHash: study.planHash,
      decision: 'approve',
    });
    expect([decided.status, codeOf(decided.body)]).toEqual([404, 'NOT_FOUND']);
  });

  it('answers an upload into an uninvited study as if the study did not exist', async () => {
    const delta = new Float32Array(14).fill(0.01);
    const frame = encodeUpdateFrame(
      {
        studyId: study.id,
        round: 1,
        attempt: 1,
        planHash: study.planHash,
        baseModelHash: modelHash,
        numExamples: 10,
        length: 14,
        payloadSha256: sha256Hex(float32Bytes(delta)),
        l2Norm: Math.sqrt(14 * 0.01 * 0.01),
        evaluation: { kind: 'exact', loss: 0.6, accuracy: 0.7, auc: null, n: 10, positives: 5 },
        privacy: null,
      },
      delta,
    );
    const res = await outsider.binary('POST', SILO_STUDY_API.update(study.id, 1), frame);
    expect([res.status, codeOf(res.bytes)]).toEqual([404, 'NOT_FOUND']);
  });

  it('downloads only models published to the silo', async () => {
    expect((await insiders[1]!.binary('GET', SILO_STUDY_API.blob(modelHash))).status).toBe(200);
    const stranger = await outsider.binary('GET', SILO_STUDY_API.blob(modelHash));
    expect([stranger.status, codeOf(stranger.bytes)]).toEqual([404, 'NOT_FOUND']);
    const unknown = await insiders[1]!.binary('GET', SILO_STUDY_API.blob(randomBytes(32).toString('hex')));
    expect([unknown.status, codeOf(unknown.bytes)]).toEqual([404, 'NOT_FOUND']);
  });

  it('refuses a report from a silo that left the study after it failed its task', async () => {
    const leaving = insiders[2]!;
    const failed = await leaving.call('POST', SILO_STUDY_API.failure(study.id, 1), {
      round: 1,
      attempt: 1,
      code: 'DATA_SCHEMA_MISMATCH',
      message: 'the local file lacks a column',
    });
    expect([failed.status, failed.body]).toEqual([200, { accepted: true }]);
    const again = await leaving.call('POST', SILO_STUDY_API.failure(study.id, 1), {
      round: 1,
      attempt: 1,
      code: 'DATA_SCHEMA_MISMATCH',
      message: 'once more',
    });
    expect([again.status, codeOf(again.body)]).toEqual([403, 'NOT_A_PARTICIPANT']);
  });
});
