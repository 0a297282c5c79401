import {
  encodeUpdateFrame,
  float32Bytes,
  sha256Hex,
  SILO_STUDY_API,
  type DecisionHistoryView,
  type PlanVersionsView,
  type RoundHistoryView,
  type SiloStudy,
  type StudyDraftView,
  type StudyView,
  type TasksResponse,
} from '@tessera/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEventPage } from '../audit/audit-log.service';
import type { RoundView } from '../rounds/rounds-query.service';
import { RoundsService } from '../rounds/rounds.service';
import { ADMIN, DATABASE_KINDS, api, signIn, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { TestSilo } from '../testing/test-silo.test-util';
import { heartDiseasePlan } from './heart-disease-plan';

// The study pages' API on a real hub and database: round history with each silo's status (trained, failed with its
// reason, late), every decision kept across plan versions, plan version diffs, pause/resume (no new round while
// paused), archive (read-only, out of the default list), clone as a new draft, and the wizard's drafts; with the
// refusals of each, and the audit records of each command.

const AUDITOR = { username: 'auditor-pages', password: 'auditor password 42', role: 'auditor' } as const;

/** The message of a refused call's error body. */
const messageOf = (res: { body: unknown }): unknown => (res.body as { message?: unknown }).message;

describe.each(DATABASE_KINDS)('study pages on the %s database', (kind) => {
  let hub: TestHub;
  let admin: Record<string, string>;
  let auditor: Record<string, string>;
  let silos: TestSilo[];
  let study: StudyView;

  const get = async <T>(path: string, headers = admin): Promise<T> => {
    const res = await api(hub, 'GET', path, { headers });
    expect(res.status, `${path}: ${JSON.stringify(res.body)}`).toBe(200);
    return res.body as T;
  };
  const rounds = () => get<RoundView[]>(`/api/studies/${study.id}/rounds`);
  const actions = async (studyId: string) =>
    (await get<AuditEventPage>(`/api/audit/events?studyId=${studyId}&limit=200`)).events.map((e) => e.action);

  /** Uploads a small update for the silo's open training task. */
  async function upload(silo: TestSilo): Promise<void> {
    const { tasks } = (await silo.call('GET', `${SILO_STUDY_API.tasks}?wait=5`)).body as TasksResponse;
    const task = tasks.find((t) => t.studyId === study.id);
    if (!task) throw new Error(`${silo.name}: no task`);
    const delta = new Float32Array(14).map((_, i) => ((i % 3) - 1) * 0.01);
    let l2 = 0;
    for (const x of delta) l2 += x * x;
    const frame = encodeUpdateFrame(
      {
        studyId: study.id,
        round: task.round,
        attempt: task.attempt,
        planHash: task.planHash,
        baseModelHash: task.modelHash,
        numExamples: 50,
        length: delta.length,
        payloadSha256: sha256Hex(float32Bytes(delta)),
        l2Norm: Math.sqrt(l2),
        evaluation: { kind: 'exact', loss: 0.6, accuracy: 0.7, auc: 0.75, n: 20, positives: 9 },
        privacy: null,
      },
      delta,
    );
    const res = await silo.binary('POST', SILO_STUDY_API.update(study.id, task.round), frame);
    expect(res.status, res.bytes.toString()).toBe(200);
  }

  beforeAll(async () => {
    hub = await startTestHub(kind);
    admin = await signIn(hub, ADMIN.username, ADMIN.password);
    expect((await api(hub, 'POST', '/api/users', { headers: admin, json: AUDITOR })).status).toBe(201);
    auditor = await signIn(hub, AUDITOR.username, AUDITOR.password);
    silos = [];
    for (const name of ['Aare', 'Birs', 'Emme']) silos.push(await TestSilo.enroll(hub, admin, `${name} ${kind}`));
  });
  afterAll(async () => {
    await hub?.dispose();
  });

  it('keeps every decision on every plan version, and lists what each version changed', async () => {
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
    plan.training.rounds = 4;
    study = (await api(hub, 'POST', '/api/studies', { headers: admin, json: { plan } })).body as StudyView;
    expect((await api(hub, 'POST', `/api/studies/${study.id}/submit`, { headers: admin })).status).toBe(200);
    const v1 = study.planHash;
    const rejected = await silos[0]!.call('POST', SILO_STUDY_API.decision(study.id), {
      planHash: v1,
      decision: 'reject',
      reason: 'four rounds is too many for our ethics approval',
    });
    expect(rejected.status).toBe(200);

    const v2plan = { ...plan, training: { ...plan.training, rounds: 3 } };
    study = (await api(hub, 'PUT', `/api/studies/${study.id}/plan`, { headers: admin, json: { plan: v2plan } }))
      .body as StudyView;
    for (const s of silos) {
      const r = await s.call('POST', SILO_STUDY_API.decision(study.id), {
        planHash: study.planHash,
        decision: 'approve',
      });
      expect(r.status).toBe(200);
    }

    const history = await get<DecisionHistoryView>(`/api/studies/${study.id}/decisions`, auditor);
    expect(history.currentPlanVersion).toBe(2);
    const first = history.decisions.filter((d) => d.siloId === silos[0]!.id);
    expect(first.map((d) => [d.planVersion, d.decision, d.current])).toEqual([
      [1, 'reject', false],
      [2, 'approve', true],
    ]);
    expect(first[0]).toMatchObject({ reason: 'four rounds is too many for our ethics approval', planHash: v1 });
    expect(history.decisions).toHaveLength(4);

    const versions = await get<PlanVersionsView>(`/api/studies/${study.id}/plan-versions`, auditor);
    expect(versions.versions.map((v) => v.version)).toEqual([1, 2]);
    expect(versions.versions[0]!.changes).toEqual([]);
    expect(versions.versions[1]!.changes).toEqual([{ path: 'training.rounds', kind: 'changed', before: 4, after: 3 }]);
    // The steward reads the same difference through the agent's study list.
    const seen = ((await silos[1]!.call('GET', SILO_STUDY_API.studies)).body as SiloStudy[]).find(
      (s) => s.studyId === study.id,
    );
    expect(seen?.changesFromPrevious).toEqual([{ path: 'training.rounds', kind: 'changed', before: 4, after: 3 }]);
    // Before any round the list says how many the plan asks for, and holds no result (read twice: it is cached).
    for (let i = 0; i < 2; i += 1) {
      const listed = (await get<StudyView[]>('/api/studies', auditor)).find((s) => s.id === study.id);
      expect(listed?.progress).toEqual({ round: null, rounds: 3, finalEvaluation: null, accuracy: null });
    }
  });

  it('lists every round with each silo: trained, late, failed with its reason, dropped after it', async () => {
    expect((await api(hub, 'POST', `/api/studies/${study.id}/start`, { headers: admin })).status).toBe(200);
    // Round 1: Emme says nothing; the round closes at its deadline without it.
    await upload(silos[0]!);
    await upload(silos[1]!);
    await hub.app.get(RoundsService).tick(new Date(Date.now() + 601_000));
    await expect.poll(async () => (await rounds()).map((r) => r.number), { timeout: 20_000 }).toEqual([1, 2]);
    // Round 2: Emme reports a failure, and the study carries on without it (onSiloFailure 'continue').
    await upload(silos[0]!);
    await upload(silos[1]!);
    const failed = await silos[2]!.call('POST', SILO_STUDY_API.failure(study.id, 2), {
      round: 2,
      attempt: 1,
      code: 'DATA_UNREADABLE',
      message: 'the export file is locked by another process',
    });
    expect(failed.status).toBe(200);
    await expect.poll(async () => (await rounds()).map((r) => r.number), { timeout: 20_000 }).toEqual([1, 2, 3]);

    const history = await get<RoundHistoryView>(`/api/studies/${study.id}/round-history`, auditor);
    expect(history.silos.map((s) => s.name)).toEqual(silos.map((s) => s.name));
    const cells = history.rounds.map((r) => [r.number, r.status, ...r.silos.map((c) => c.status)]);
    expect(cells).toEqual([
      [1, 'closed', 'trained', 'trained', 'late'],
      [2, 'closed', 'trained', 'trained', 'failed'],
      [3, 'open', 'waiting', 'waiting', 'dropped'],
    ]);
    expect(history.rounds[0]!.silos[2]!.reason).toMatch(/deadline/);
    expect(history.rounds[1]!.silos[2]!.reason).toBe('DATA_UNREADABLE: the export file is locked by another process');
    expect(history.rounds[2]!.silos[2]!.reason).toBe('dropped after its failure in round 2');
    // The list shows round 3 of 3 under way and round 2's mean accuracy (exact: no DP release), on the next read.
    const listed = (await get<StudyView[]>('/api/studies', auditor)).find((s) => s.id === study.id);
    expect(listed?.progress).toMatchObject({ round: 3, rounds: 3, finalEvaluation: null });
    expect(listed?.progress?.accuracy).toMatchObject({ round: 2, final: false, noisy: false });
    expect(listed?.progress?.accuracy?.mean).toBeCloseTo(0.7, 10);
    for (const sub of ['round-history', 'decisions', 'plan-versions']) {
      const missing = await api(hub, 'GET', `/api/studies/00000000-0000-4000-8000-000000000000/${sub}`, {
        headers: admin,
      });
      expect({ sub, ...(missing.body as object) }).toMatchObject({ sub, error: 'NOT_FOUND' });
      expect((await api(hub, 'GET', `/api/studies/not-a-uuid/${sub}`, { headers: admin })).status).toBe(400);
      expect((await api(hub, 'GET', `/api/studies/${study.id}/${sub}`)).status).toBe(401);
    }
  });

  it('pauses: the round under way finishes, no new round opens, agents are told; resume opens it', async () => {
    const path = `/api/studies/${study.id}`;
    const notPaused = await api(hub, 'POST', `${path}/resume`, { headers: admin });
    expect(notPaused).toMatchObject({ status: 409, body: { error: 'STUDY_STATE' } });
    expect(messageOf(notPaused)).toMatch(/Only a paused study can be resumed/);
    const short = await api(hub, 'POST', `${path}/pause`, { headers: admin, json: { reason: 'x' } });
    expect(short.status).toBe(400);
    expect(JSON.stringify(short.body)).toMatch(/reason/);
    expect((await api(hub, 'POST', `${path}/pause`, { headers: auditor, json: { reason: 'audit' } })).status).toBe(403);
    expect((await get<StudyView>(path)).paused).toBeNull();

    const paused = await api(hub, 'POST', `${path}/pause`, { headers: admin, json: { reason: 'site migration' } });
    expect(paused).toMatchObject({ status: 200, body: { status: 'running', paused: { reason: 'site migration' } } });
    const pausedAgain = await api(hub, 'POST', `${path}/pause`, { headers: admin, json: { reason: 'again' } });
    expect(pausedAgain.status).toBe(409);
    expect(messageOf(pausedAgain)).toMatch(/already paused/);
    const told = ((await silos[0]!.call('GET', SILO_STUDY_API.studies)).body as SiloStudy[]).find(
      (s) => s.studyId === study.id,
    );
    expect(told?.paused).toMatchObject({ reason: 'site migration' });

    // Round 3 was open when paused: it finishes; round 4 (the final evaluation) is held back.
    for (const s of silos.slice(0, 2)) await upload(s);
    await expect
      .poll(async () => (await rounds()).find((r) => r.number === 3)?.status, { timeout: 20_000 })
      .toBe('closed');
    await hub.app.get(RoundsService).tick(new Date(Date.now() + 601_000));
    expect((await rounds()).map((r) => r.number)).toEqual([1, 2, 3]);
    const { tasks } = (await silos[0]!.call('GET', `${SILO_STUDY_API.tasks}?wait=0`)).body as TasksResponse;
    expect(tasks.filter((t) => t.studyId === study.id)).toEqual([]);

    const resumed = await api(hub, 'POST', `${path}/resume`, { headers: admin });
    expect(resumed).toMatchObject({ status: 200, body: { status: 'running', paused: null } });
    const after = await rounds();
    expect(after.map((r) => [r.number, r.kind, r.status])).toEqual([
      [1, 'train', 'closed'],
      [2, 'train', 'closed'],
      [3, 'train', 'closed'],
      [4, 'evaluate', 'open'],
    ]);
    expect(after[3]!.modelHash).toBe(after[2]!.resultModelHash);
    const again = (await silos[0]!.call('GET', `${SILO_STUDY_API.tasks}?wait=5`)).body as TasksResponse;
    expect(again.tasks.filter((t) => t.studyId === study.id).map((t) => t.kind)).toEqual(['evaluate']);
    const recorded = await actions(study.id);
    expect(recorded).toEqual(expect.arrayContaining(['study.paused', 'study.round.held', 'study.resumed']));
  });

  it('archives a stopped study: read-only, out of the default list, listed with a filter; clones it as a draft', async () => {
    const path = `/api/studies/${study.id}`;
    const running = await api(hub, 'POST', `${path}/archive`, { headers: admin });
    expect(running.status).toBe(409);
    expect(messageOf(running)).toMatch(/running study cannot be archived/);
    expect((await api(hub, 'POST', `${path}/stop`, { headers: admin, json: { reason: 'enough rounds' } })).status).toBe(
      200,
    );
    const archived = await api(hub, 'POST', `${path}/archive`, { headers: admin });
    expect(archived).toMatchObject({ status: 200, body: { status: 'stopped' } });
    expect((archived.body as StudyView).archivedAt).toBeTypeOf('string');

    const ids = (list: unknown) => (list as StudyView[]).map((s) => s.id);
    expect(ids(await get('/api/studies'))).not.toContain(study.id);
    expect(ids(await get('/api/studies?archived=only'))).toEqual([study.id]);
    expect(ids(await get('/api/studies?archived=include', auditor))).toContain(study.id);
    const bad = await api(hub, 'GET', '/api/studies?archived=sometimes', { headers: admin });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('archived must be one of exclude, include, only');
    // Read-only: every command names the archive.
    for (const [method, sub, json] of [
      ['POST', 'stop', { reason: 'once more' }],
      ['POST', 'archive', undefined],
      ['PUT', 'plan', { plan: study.plan }],
    ] as const) {
      const res = await api(hub, method, `${path}/${sub}`, { headers: admin, json });
      expect(res.status, sub).toBe(409);
      expect(messageOf(res), sub).toMatch(/archived/);
    }
    expect((await get<StudyView>(path, auditor)).status).toBe('stopped');

    const cloned = await api(hub, 'POST', `${path}/clone`, { headers: admin });
    expect(cloned.status).toBe(201);
    const clone = cloned.body as StudyView;
    expect(clone).toMatchObject({
      status: 'draft',
      planVersion: 1,
      clonedFrom: study.id,
      participants: [],
      currentModelHash: null,
      archivedAt: null,
      paused: null,
    });
    expect(clone.id).not.toBe(study.id);
    expect(clone.planHash).not.toBe(study.planHash);
    expect(clone.plan).toEqual(study.plan);
    expect(clone.decisions.every((d) => d.decision === null)).toBe(true);
    expect(await get(`/api/studies/${clone.id}/rounds`)).toEqual([]);
    expect((await get<DecisionHistoryView>(`/api/studies/${clone.id}/decisions`)).decisions).toEqual([]);
    expect((await api(hub, 'POST', `${path}/clone`, { headers: auditor })).status).toBe(403);
    expect((await api(hub, 'POST', '/api/studies/not-a-uuid/clone', { headers: admin })).status).toBe(400);

    expect((await api(hub, 'POST', `${path}/unarchive`, { headers: admin })).status).toBe(200);
    const notArchived = await api(hub, 'POST', `${path}/unarchive`, { headers: admin });
    expect(notArchived).toMatchObject({ status: 409, body: { error: 'STUDY_STATE' } });
    expect(messageOf(notArchived)).toMatch(/is not archived/);
    expect(ids(await get('/api/studies'))).toContain(study.id);
    expect(await actions(study.id)).toEqual(
      expect.arrayContaining(['study.archived', 'study.cloned', 'study.unarchived']),
    );
    expect(await actions(clone.id)).toContain('study.created');
  });

  it("saves the wizard's drafts on the hub, per administrator, refusing bad input", async () => {
    const form = { name: 'Sepsis early warning', training: { rounds: '1' } };
    const created = await api(hub, 'POST', '/api/study-drafts', { headers: admin, json: { form, step: 2 } });
    expect(created).toMatchObject({ status: 201, body: { title: 'Sepsis early warning', step: 2, studyId: null } });
    const draft = created.body as StudyDraftView;
    const saved = await api(hub, 'PUT', `/api/study-drafts/${draft.id}`, {
      headers: admin,
      json: { form: { ...form, name: '', training: { rounds: '12' } }, step: 4 },
    });
    expect(saved).toMatchObject({ status: 200, body: { title: 'Untitled draft', step: 4 } });
    const listed = await get<StudyDraftView[]>('/api/study-drafts');
    expect(listed.map((d) => [d.id, d.form])).toEqual([[draft.id, { name: '', training: { rounds: '12' } }]]);

    for (const [json, named] of [
      [{ step: 1 }, 'form'],
      [{ form, step: -1 }, 'step'],
      [{ form, step: 1.5 }, 'step'],
      [{ form: 'text', step: 1 }, 'form'],
      [{ form, step: 1, studyId: 'nope' }, 'studyId'],
      [{ form, step: 1, extra: true }, 'extra'],
    ] as const) {
      const res = await api(hub, 'POST', '/api/study-drafts', { headers: admin, json });
      expect({ named, status: res.status }).toEqual({ named, status: 400 });
      expect(JSON.stringify(res.body)).toContain(named);
    }
    const ofRunning = await api(hub, 'POST', '/api/study-drafts', {
      headers: admin,
      json: { form, step: 0, studyId: study.id },
    });
    expect(ofRunning.status).toBe(409);
    expect((await api(hub, 'GET', '/api/study-drafts', { headers: auditor })).status).toBe(403);
    const badSave = await api(hub, 'PUT', `/api/study-drafts/${draft.id}`, {
      headers: admin,
      json: { form, step: 100 },
    });
    expect(badSave.status).toBe(400);
    expect(JSON.stringify(badSave.body)).toContain('step');
    // Another administrator's draft is not theirs to read, save or delete.
    const other = { username: 'admin-two', password: 'a second admin password', role: 'admin' } as const;
    expect((await api(hub, 'POST', '/api/users', { headers: admin, json: other })).status).toBe(201);
    const second = await signIn(hub, other.username, other.password);
    expect(await get<StudyDraftView[]>('/api/study-drafts', second)).toEqual([]);
    for (const [method, json] of [
      ['GET', undefined],
      ['PUT', { form: {}, step: 0 }],
      ['DELETE', undefined],
    ] as const) {
      const res = await api(hub, method, `/api/study-drafts/${draft.id}`, { headers: second, json });
      expect({ method, status: res.status }).toEqual({ method, status: 404 });
    }
    expect((await get<StudyDraftView>(`/api/study-drafts/${draft.id}`)).form).toEqual({
      name: '',
      training: { rounds: '12' },
    });
    expect(await get<StudyDraftView[]>('/api/study-drafts')).toHaveLength(1);

    expect((await api(hub, 'DELETE', `/api/study-drafts/${draft.id}`, { headers: admin })).status).toBe(204);
    expect((await api(hub, 'GET', `/api/study-drafts/${draft.id}`, { headers: admin })).status).toBe(404);
    const recorded = (await get<AuditEventPage>('/api/audit/events?action=study.draft.&limit=50')).events;
    expect(recorded.map((e) => e.action).sort()).toEqual([
      'study.draft.created',
      'study.draft.deleted',
      'study.draft.saved',
    ]);
    expect(JSON.stringify(recorded)).not.toContain('training');
  });
});
