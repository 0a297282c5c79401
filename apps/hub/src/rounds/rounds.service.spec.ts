import { randomUUID } from 'node:crypto';
import type { EvaluationReport, FailureReport } from '@tessera/protocol';
import { beforeEach, describe, expect, it } from 'vitest';
import type { AuditCheckpointService } from '../audit/audit-checkpoint.service';
import type { AuditEvent, AuditTrail } from '../audit/audit-trail';
import type { BlobStore } from '../blobs/blob-store';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { ReadCache } from '../database/read-cache';
import type { PrivacyLedgerService } from '../privacy/privacy-ledger.service';
import type { SiloIdentity } from '../silos/silo-identity';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import { InMemoryRounds } from './in-memory-rounds.test-util';
import type { RoundCloser } from './round-closer.service';
import type { RoundOpener } from './round-opener.service';
import type { RoundViewsRepository } from './round-views.repository';
import type { RoundsRepository } from './rounds.repository';
import { RoundsService } from './rounds.service';
import type { UpdateAcceptanceService } from './update-acceptance.service';

const siloNamed = (name: string): SiloIdentity => ({
  siloId: randomUUID(),
  name,
  certificateSerial: '01',
  certificateFingerprintSha256: 'f'.repeat(64),
  certificateNotAfter: new Date(Date.now() + 86_400_000),
});

function harness(onSiloFailure: 'continue' | 'fail-study' = 'continue') {
  const store = new InMemoryRounds();
  const written: { event: AuditEvent; tx: number | undefined }[] = [];
  const audit = {
    record: (event: AuditEvent) => Promise.resolve(void written.push({ event, tx: store.openTransaction() })),
  } as unknown as AuditTrail;
  const actions = () => written.filter((r) => r.tx === undefined || store.didCommit(r.tx)).map((r) => r.event.action);
  let checkpoints = 0;
  const checkpointer = { checkpointNow: () => Promise.resolve(void (checkpoints += 1)) };
  const ledger = { mechanismOf: () => null } as unknown as PrivacyLedgerService;
  const closer = { dueRounds: () => Promise.resolve([]) } as unknown as RoundCloser;
  const cache = { read: <T>(_key: string, load: () => Promise<T>) => load() } as unknown as ReadCache;
  const service = new RoundsService(
    store as unknown as RoundsRepository,
    {} as RoundViewsRepository,
    {} as BlobStore,
    audit,
    checkpointer as unknown as AuditCheckpointService,
    ledger,
    {} as UpdateAcceptanceService,
    {} as RoundOpener,
    closer,
    cache,
  );
  const [a, b, c] = [siloNamed('Basel'), siloNamed('Bern'), siloNamed('Chur')];
  const silos = [a.siloId, b.siloId, c.siloId];
  const plan = heartDiseasePlan(silos);
  plan.participation.onSiloFailure = onSiloFailure;
  const study = store.seedStudy({ plan, participants: silos });
  // The final evaluation round (after the plan's training rounds).
  const round = store.seedRound({ studyId: study.id, number: plan.training.rounds + 1, kind: 'evaluate' }, silos);
  const report = (): EvaluationReport => ({
    round: round.number,
    attempt: 1,
    planHash: study.planHash,
    modelHash: round.modelHash,
    evaluation: { kind: 'exact', loss: 0.5, accuracy: 0.8, auc: null, n: 20, positives: 9 },
    privacy: null,
  });
  const failure = (): FailureReport => ({
    round: round.number,
    attempt: 1,
    code: 'DATA_UNREADABLE',
    message: 'the file is gone',
  });
  return { store, service, actions, a, b, c, study, round, report, failure, checkpoints: () => checkpoints };
}

async function refusal(promise: Promise<unknown>): Promise<HubErrorCode> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof HubException)) throw new Error(`expected a refusal, got ${String(err)}`);
  return err.code;
}

describe('RoundsService: what silos report, over its repository', { timeout: 30_000 }, () => {
  let h: ReturnType<typeof harness>;
  beforeEach(() => {
    h = harness();
  });

  it('stores an evaluation report under the round lock, with its record in the same transaction', async () => {
    await h.service.acceptEvaluation(h.a, h.study.id, h.round.number, h.report());
    const row = h.store.participants.find((p) => p.siloId === h.a.siloId)!;
    expect(row).toMatchObject({ status: 'evaluated', evaluation: { accuracy: 0.8 } });
    expect(row.reportedAt).toBeInstanceOf(Date);
    expect(h.actions()).toEqual(['round.evaluation.reported']);
  });

  it('refuses a second report of the same silo (DUPLICATE_UPDATE) and records the refusal', async () => {
    await h.service.acceptEvaluation(h.a, h.study.id, h.round.number, h.report());
    const again = h.service.acceptEvaluation(h.a, h.study.id, h.round.number, h.report());
    expect(await refusal(again)).toBe(HubErrorCode.DUPLICATE_UPDATE);
    expect(h.actions()).toEqual(['round.evaluation.reported', 'round.evaluation.refused']);
  });

  it('two reports of one silo racing: one is stored, the other refused', async () => {
    const outcomes = await Promise.allSettled([
      h.service.acceptEvaluation(h.a, h.study.id, h.round.number, h.report()),
      h.service.acceptEvaluation(h.a, h.study.id, h.round.number, h.report()),
    ]);
    expect(outcomes.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect(h.actions().filter((a) => a === 'round.evaluation.reported')).toHaveLength(1);
  });

  it('refuses a report racing the round close: the close took the lock first, the report finds it closed', async () => {
    let report!: Promise<unknown>;
    await h.store.inTransaction(async (tx) => {
      await tx.lockRound(h.round.id);
      report = h.service.acceptEvaluation(h.a, h.study.id, h.round.number, h.report());
      report.catch(() => undefined);
      // The report saw the round open and now waits for its lock.
      await new Promise((resolve) => setTimeout(resolve, 20));
      await tx.endAttempt(h.round.id, { status: 'closed', closedAt: new Date() });
    });
    expect(await refusal(report)).toBe(HubErrorCode.ROUND_CLOSED);
    expect(h.store.participants.find((p) => p.siloId === h.a.siloId)!.status).toBe('waiting');
  });

  it('a failure report takes the silo out of the study and the round', async () => {
    await h.service.acceptFailure(h.b, h.study.id, h.round.number, h.failure());
    expect(h.store.participants.find((p) => p.siloId === h.b.siloId)).toMatchObject({
      status: 'failed',
      failure: { code: 'DATA_UNREADABLE', message: 'the file is gone' },
    });
    expect(h.store.studies[0]!.participants).toEqual([h.a.siloId, h.c.siloId]);
    expect(h.actions()).toEqual(['round.silo.failed']);
    expect(h.checkpoints()).toBe(0);
  });

  it("under 'fail-study', a failure report fails the study and the round, sealed with a checkpoint", async () => {
    const f = harness('fail-study');
    await f.service.acceptFailure(f.b, f.study.id, f.round.number, f.failure());
    expect(f.store.studies[0]).toMatchObject({ status: 'failed' });
    expect(f.store.rounds[0]).toMatchObject({ status: 'failed', closeClaim: null });
    expect(f.actions()).toEqual(['round.silo.failed', 'study.failed']);
    expect(f.checkpoints()).toBe(1);
  });

  it('a failure report after another report of the same silo changes nothing on its row', async () => {
    await h.service.acceptEvaluation(h.a, h.study.id, h.round.number, h.report());
    await h.service.acceptFailure(h.a, h.study.id, h.round.number, h.failure());
    expect(h.store.participants.find((p) => p.siloId === h.a.siloId)!.status).toBe('evaluated');
  });
});

describe('RoundsService: the long poll for tasks', { timeout: 30_000 }, () => {
  /** A service whose tick closes `due` rounds, over a task list the test sets. */
  function poller() {
    let tasks: { study_id: string }[] = [];
    const due: string[] = [];
    const closed: string[] = [];
    const views = {
      pendingTasks: () =>
        Promise.resolve(
          tasks.map((t) => ({
            ...t,
            plan_version: 1,
            plan_hash: 'a'.repeat(64),
            kind: 'train',
            number: 2,
            attempt: 1,
            model_hash: 'b'.repeat(64),
            deadline_at: new Date(Date.now() + 60_000),
            control_variate_hash: null,
          })),
        ),
    } as unknown as RoundViewsRepository;
    const closer = {
      dueRounds: () => Promise.resolve(due.splice(0)),
      closeRound: (id: string) => Promise.resolve(void closed.push(id)),
    } as unknown as RoundCloser;
    const cache = { read: <T>(_key: string, load: () => Promise<T>) => load() } as unknown as ReadCache;
    const service = new RoundsService(
      {} as RoundsRepository,
      views,
      {} as BlobStore,
      {} as AuditTrail,
      {} as AuditCheckpointService,
      {} as PrivacyLedgerService,
      {} as UpdateAcceptanceService,
      {} as RoundOpener,
      closer,
      cache,
    );
    service.onModuleInit();
    return {
      service,
      closed,
      setTasks: (studyIds: string[]) => (tasks = studyIds.map((study_id) => ({ study_id }))),
      closeOnNextCheck: (id: string) => due.push(id),
    };
  }

  it('answers an empty list as soon as a round closes (the study may have ended), not at the end of the wait', async () => {
    const p = poller();
    try {
      const started = Date.now();
      const answer = p.service.tasksFor('silo-1', 20_000);
      // The last round of the study closes and opens nothing: the silo has no task, but its study ended.
      p.closeOnNextCheck('round-11');
      p.service.wake('check');
      expect(await answer).toEqual([]);
      expect(p.closed).toEqual(['round-11']);
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      p.service.onModuleDestroy();
    }
  });

  it('answers at once when a round closed after the silo last read its studies, and waits once it read them again', async () => {
    const p = poller();
    try {
      // The agent reads its studies (the study still running), then reports; the report's check closes the last
      // round and ends the study before the agent's long poll arrives: nothing wakes that poll, so it answers now.
      p.service.studiesRead('silo-1');
      p.closeOnNextCheck('round-11');
      p.service.wake('check');
      await new Promise((r) => setTimeout(r, 50));
      expect(p.closed).toEqual(['round-11']);
      const started = Date.now();
      expect(await p.service.tasksFor('silo-1', 20_000)).toEqual([]);
      expect(Date.now() - started).toBeLessThan(10_000);
      // Once per change: a poll that follows without reading the studies again waits (it does not spin).
      const next = Date.now();
      expect(await p.service.tasksFor('silo-1', 600)).toEqual([]);
      expect(Date.now() - next).toBeGreaterThanOrEqual(550);
      // Once it has read its studies again, the same poll waits (here to its end), and so does another silo's
      // that never read its studies since it started (nothing to say it missed a change).
      await new Promise((r) => setTimeout(r, 5));
      p.service.studiesRead('silo-1');
      const again = Date.now();
      expect(await p.service.tasksFor('silo-1', 600)).toEqual([]);
      expect(Date.now() - again).toBeGreaterThanOrEqual(550);
      const other = Date.now();
      expect(await p.service.tasksFor('silo-2', 600)).toEqual([]);
      expect(Date.now() - other).toBeGreaterThanOrEqual(550);
    } finally {
      p.service.onModuleDestroy();
    }
  });

  it('keeps waiting through checks that change nothing, and answers with the task once one is issued', async () => {
    const p = poller();
    try {
      const answer = p.service.tasksFor('silo-1', 20_000);
      let settled = false;
      void answer.then(() => (settled = true));
      // Checks that close nothing (the hub's periodic tick, another silo's upload) do not end the wait.
      p.service.wake('check');
      await new Promise((r) => setTimeout(r, 1_200));
      expect(settled).toBe(false);
      p.setTasks(['study-1']);
      p.closeOnNextCheck('round-1');
      p.service.wake('check');
      expect((await answer).map((t) => [t.studyId, t.round])).toEqual([['study-1', 2]]);
    } finally {
      p.service.onModuleDestroy();
    }
  });
});
