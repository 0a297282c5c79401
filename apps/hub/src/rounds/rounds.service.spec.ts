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
