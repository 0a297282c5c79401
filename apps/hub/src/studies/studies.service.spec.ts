import { planHash, type StudyPlan } from '@tessera/protocol';
import { beforeEach, describe, expect, it } from 'vitest';
import type { AuditCheckpointService } from '../audit/audit-checkpoint.service';
import type { AuditEvent, AuditTrail } from '../audit/audit-trail';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { HubConfig } from '../config/config.schema';
import type { RoundsService } from '../rounds/rounds.service';
import type { StudyEntity } from '../study-state/study.entity';
import { heartDiseasePlan } from './heart-disease-plan';
import { InMemoryStudies } from './in-memory-studies.test-util';
import type { OpenTransaction, StudiesRepository } from './studies.repository';
import { StudiesService } from './studies.service';

const ADMIN = { type: 'user', id: 'admin-1', name: 'root' } as const;

/** Resolves when opened: holds a transaction open at a chosen statement so another can race it. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

/** Lets every pending promise chain run (a transaction waiting for a row lock stays waiting). */
const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 5));

function harness() {
  const store = new InMemoryStudies();
  const written: { event: AuditEvent; tx: number | undefined }[] = [];
  /** A spec may hold a record's transaction open at a given action (the record is then written). */
  const holds = new Map<string, Promise<void>>();
  const audit: AuditTrail = {
    record: async (event: AuditEvent) => {
      written.push({ event, tx: store.openTransaction() });
      await holds.get(event.action);
    },
  };
  // A record joins its transaction (AmbientTransactions): one written in a transaction that rolled back is gone.
  const records = () => written.filter((r) => r.tx === undefined || store.didCommit(r.tx));
  const engine: { call: string; studyId: string; tx: number; participants?: string[] }[] = [];
  let failFirstRound: Error | null = null;
  let wakes = 0;
  const rounds = {
    openFirstRound: (tx: OpenTransaction, study: StudyEntity) => {
      engine.push({
        call: 'openFirstRound',
        studyId: study.id,
        tx: InMemoryStudies.transactionOf(tx),
        participants: study.participants,
      });
      return failFirstRound ? Promise.reject(failFirstRound) : Promise.resolve([]);
    },
    abandonOpenRounds: (tx: OpenTransaction, studyId: string) => {
      engine.push({ call: 'abandonOpenRounds', studyId, tx: InMemoryStudies.transactionOf(tx) });
      return Promise.resolve();
    },
    auditCharges: () => Promise.resolve(),
    wake: () => void wakes++,
  } as unknown as RoundsService;
  let checkpoints = 0;
  const checkpointer = {
    checkpointNow: () => Promise.resolve(void checkpoints++),
  } as unknown as AuditCheckpointService;
  const config = { aggregationMemory: 1 << 30, aggregationBlockParameters: 1 << 20 } as HubConfig;
  const service = new StudiesService(
    store.studies as unknown as StudiesRepository,
    rounds,
    audit,
    checkpointer,
    config,
  );
  const silos = ['Basel', 'Bern', 'Chur'].map((name) => store.seedSilo({ name }).id);
  return {
    store,
    service,
    records,
    holds,
    engine,
    silos,
    failRoundsWith: (err: Error) => (failFirstRound = err),
    wakes: () => wakes,
    checkpoints: () => checkpoints,
  };
}

type Harness = ReturnType<typeof harness>;

function planFor(h: Harness, overrides: Partial<StudyPlan> = {}): StudyPlan {
  return heartDiseasePlan(h.silos, overrides as Parameters<typeof heartDiseasePlan>[1]);
}

async function refusal(work: Promise<unknown>): Promise<HubException> {
  const err = await work.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HubException);
  return err as HubException;
}

/** A submitted study and the decisions of the named silos (by index) on its current plan. */
async function awaitingApprovals(h: Harness, approve: number[], reject: number[] = []) {
  const created = await h.service.create(planFor(h), ADMIN);
  const submitted = await h.service.submit(created.id, ADMIN);
  for (const i of approve) await h.service.decide(h.silos[i]!, created.id, submitted.planHash, 'approve', undefined);
  for (const i of reject) await h.service.decide(h.silos[i]!, created.id, submitted.planHash, 'reject', 'too broad');
  return submitted;
}

describe('StudiesService over its repository', () => {
  let h: Harness;
  beforeEach(() => {
    h = harness();
  });

  it('creates a draft at plan version 1 with its hash, its version row and its record in one transaction', async () => {
    const view = await h.service.create(planFor(h), ADMIN);
    expect(view).toMatchObject({ status: 'draft', planVersion: 1, participants: [], name: 'Fed-Heart-Disease' });
    expect(view.planHash).toBe(planHash(view.id, 1, planFor(h)));
    expect(h.store.versionRows).toEqual([
      expect.objectContaining({ studyId: view.id, version: 1, planHash: view.planHash }),
    ]);
    expect(h.store.studyRows[0]).toMatchObject({ createdBy: 'admin-1', clonedFrom: null });
    expect(h.records().map((r) => [r.event.action, r.tx !== undefined])).toEqual([['study.created', true]]);
    expect(view.decisions.map((d) => [d.siloName, d.decision])).toEqual([
      ['Basel', null],
      ['Bern', null],
      ['Chur', null],
    ]);
  });

  it('refuses a plan naming an unknown or a suspended silo, and writes nothing', async () => {
    const suspended = h.store.seedSilo({ name: 'Genf', status: 'suspended' }).id;
    const unknown = '00000000-0000-4000-8000-000000000000';
    const err = await refusal(h.service.create(heartDiseasePlan([...h.silos, suspended, unknown]), ADMIN));
    expect(err.code).toBe(HubErrorCode.PLAN_INVALID);
    expect(err.details).toEqual([`silos.3: silo "Genf" is suspended`, `silos.4: no silo with id ${unknown}`]);
    expect(h.store.studyRows).toEqual([]);
    expect(h.records()).toEqual([]);
  });

  it('versions a changed plan with a new hash: decisions on the older version no longer count', async () => {
    const submitted = await awaitingApprovals(h, [0, 1]);
    const changed = await h.service.updatePlan(submitted.id, planFor(h, { name: 'Heart v2' }), ADMIN);
    expect(changed).toMatchObject({ planVersion: 2, name: 'Heart v2', status: 'awaiting_approvals' });
    expect(changed.planHash).toBe(planHash(submitted.id, 2, planFor(h, { name: 'Heart v2' })));
    expect(changed.decisions.map((d) => d.decision)).toEqual([null, null, null]);
    expect(h.store.versionRows.map((v) => v.version).sort()).toEqual([1, 2]);
    const [mine] = await h.service.forSilo(h.silos[0]!);
    expect(mine).toMatchObject({ planVersion: 2, decision: null });
    expect(mine!.changesFromPrevious).toEqual(expect.arrayContaining([expect.objectContaining({ path: 'name' })]));
  });

  it('queues two plan changes of one study on its row lock: versions 2 and 3, never two rows for version 2', async () => {
    const created = await h.service.create(planFor(h), ADMIN);
    await Promise.all([
      h.service.updatePlan(created.id, planFor(h, { name: 'Heart A' }), ADMIN),
      h.service.updatePlan(created.id, planFor(h, { name: 'Heart B' }), ADMIN),
    ]);
    expect(h.store.versionRows.map((v) => v.version).sort()).toEqual([1, 2, 3]);
    expect((await h.service.get(created.id)).planVersion).toBe(3);
    expect(h.store.lockLog).toEqual([`study:${created.id}`, `study:${created.id}`]);
  });

  it('a decision racing a plan change waits for the study lock and is refused as stale', async () => {
    const submitted = await awaitingApprovals(h, []);
    const held = gate();
    h.holds.set('study.plan.versioned', held.opened);
    const locksBefore = h.store.lockLog.length;
    const change = h.service.updatePlan(submitted.id, planFor(h, { name: 'Heart v2' }), ADMIN);
    while (h.store.lockLog.length === locksBefore) await settle();
    const decision = h.service.decide(h.silos[0]!, submitted.id, submitted.planHash, 'approve', undefined);
    await settle();
    expect(h.store.decisionRows).toEqual([]);
    held.open();
    await change;
    expect((await refusal(decision)).code).toBe(HubErrorCode.STALE_PLAN);
    expect(h.store.decisionRows).toEqual([]);
  });

  it('takes a decision only from an invited silo, on the current hash, while approvals are open', async () => {
    const created = await h.service.create(planFor(h), ADMIN);
    expect(
      (await refusal(h.service.decide(h.silos[0]!, created.id, created.planHash, 'approve', undefined))).code,
    ).toBe(HubErrorCode.NOT_FOUND);
    await h.service.submit(created.id, ADMIN);
    const outsider = h.store.seedSilo({ name: 'Genf' }).id;
    expect((await refusal(h.service.decide(outsider, created.id, created.planHash, 'approve', undefined))).code).toBe(
      HubErrorCode.NOT_FOUND,
    );
    expect((await refusal(h.service.decide(h.silos[0]!, created.id, 'ab'.repeat(32), 'approve', undefined))).code).toBe(
      HubErrorCode.STALE_PLAN,
    );
    const mine = await h.service.decide(h.silos[0]!, created.id, created.planHash, 'reject', 'no consent');
    expect(mine.decision).toMatchObject({ decision: 'reject', planVersion: 1, planHash: created.planHash });
    expect(h.records().map((r) => [r.event.action, r.event.actor.type])).toEqual([
      ['study.created', 'user'],
      ['study.submitted', 'user'],
      ['study.plan.rejected', 'silo'],
    ]);
  });

  it('starts with the silos that approved the current hash, leaving out suspended ones and rejections', async () => {
    const submitted = await awaitingApprovals(h, [0, 1], [2]);
    const started = await h.service.start(submitted.id, ADMIN);
    expect(started).toMatchObject({ status: 'running', participants: [h.silos[0], h.silos[1]] });
    const startTx = h.records().find((r) => r.event.action === 'study.started')!.tx;
    expect(h.engine).toEqual([
      { call: 'openFirstRound', studyId: submitted.id, tx: startTx, participants: [h.silos[0], h.silos[1]] },
    ]);
    expect(h.wakes()).toBe(1);
  });

  it('refuses to start below the plan minimum, and rolls a start back when its first round fails', async () => {
    const one = await awaitingApprovals(h, [0], [1]);
    const err = await refusal(h.service.start(one.id, ADMIN));
    expect([err.code, err.message]).toEqual([HubErrorCode.STUDY_STATE, expect.stringContaining('Only 1 of 3')]);
    expect(h.engine).toEqual([]);

    h.failRoundsWith(new Error('blob store down'));
    const two = await awaitingApprovals(h, [0, 1]);
    await expect(h.service.start(two.id, ADMIN)).rejects.toThrow('blob store down');
    expect((await h.service.get(two.id)).status).toBe('awaiting_approvals');
    expect(h.records().filter((r) => r.event.action === 'study.started')).toEqual([]);
    expect(h.wakes()).toBe(0);
  });

  it('stops a paused study: its open rounds abandoned and its pause cleared in the stop transaction', async () => {
    const submitted = await awaitingApprovals(h, [0, 1]);
    await h.service.start(submitted.id, ADMIN);
    await h.store.studies.inTransaction((tx) =>
      tx.updateStudy(submitted.id, {
        pausedAt: new Date(),
        pauseReason: 'audit',
        pausedNextRound: { number: 2, attempt: 1, kind: 'train', modelHash: 'a'.repeat(64) },
      }),
    );
    const stopped = await h.service.stop(submitted.id, 'ethics', ADMIN);
    expect(stopped).toMatchObject({ status: 'stopped', endReason: 'ethics', paused: null });
    expect(h.store.studyRows[0]).toMatchObject({ pausedAt: null, pauseReason: null, pausedNextRound: null });
    const stopTx = h.records().find((r) => r.event.action === 'study.stopped')!.tx;
    expect(h.engine.filter((c) => c.call === 'abandonOpenRounds')).toEqual([
      { call: 'abandonOpenRounds', studyId: submitted.id, tx: stopTx },
    ]);
    expect(h.checkpoints()).toBe(1);
    // The start woke the long polls once, the stop once more: agents waiting on the study hear it has ended.
    expect(h.wakes()).toBe(2);
    expect((await refusal(h.service.stop(submitted.id, 'again', ADMIN))).code).toBe(HubErrorCode.STUDY_STATE);
    expect(h.wakes()).toBe(2);
  });

  it('refuses every command on an archived study, and lists archived studies only when asked', async () => {
    const live = await h.service.create(planFor(h, { name: 'Live' }), ADMIN);
    const old = h.store.seedStudy({ name: 'Old', plan: planFor(h, { name: 'Old' }), archivedAt: new Date() });
    expect((await refusal(h.service.submit(old.id, ADMIN))).code).toBe(HubErrorCode.STUDY_STATE);
    expect((await refusal(h.service.updatePlan(old.id, planFor(h), ADMIN))).code).toBe(HubErrorCode.STUDY_STATE);
    expect((await refusal(h.service.stop(old.id, 'x', ADMIN))).code).toBe(HubErrorCode.STUDY_STATE);
    expect((await h.service.list()).map((s) => s.name)).toEqual(['Live']);
    expect((await h.service.list('only')).map((s) => s.name)).toEqual(['Old']);
    expect((await h.service.list('include')).map((s) => s.name)).toEqual(['Old', 'Live']);
    expect(live.archivedAt).toBeNull();
  });

  it('answers a missing study as NOT_FOUND and shows its progress from the round rows', async () => {
    expect((await refusal(h.service.get('00000000-0000-4000-8000-000000000001'))).code).toBe(HubErrorCode.NOT_FOUND);
    const created = await h.service.create(planFor(h), ADMIN);
    h.store.seedProgress({
      studyId: created.id,
      round: 3,
      finalEvaluation: null,
      accuracyRound: 3,
      accuracyKind: 'train',
      accuracyMean: 0.8,
      accuracyNoisy: false,
    });
    expect((await h.service.get(created.id)).progress).toEqual({
      round: 3,
      rounds: 10,
      finalEvaluation: null,
      accuracy: { mean: 0.8, round: 3, final: false, noisy: false },
    });
  });

  it('shows a silo only the studies it is invited to, past draft', async () => {
    const draft = await h.service.create(planFor(h, { name: 'Draft' }), ADMIN);
    const open = await awaitingApprovals(h, [1]);
    const others = await h.service.create(heartDiseasePlan([h.silos[1]!, h.silos[2]!]), ADMIN);
    await h.service.submit(others.id, ADMIN);
    const basel = await h.service.forSilo(h.silos[0]!);
    expect(basel.map((s) => s.studyId)).toEqual([open.id]);
    expect(basel.map((s) => s.studyId)).not.toContain(draft.id);
    const bern = await h.service.forSilo(h.silos[1]!);
    expect(bern.map((s) => [s.studyId, s.decision?.decision ?? null])).toEqual([
      [open.id, 'approve'],
      [others.id, null],
    ]);
  });
});
