import type { StudyPlan } from '@tessera/protocol';
import { beforeEach, describe, expect, it } from 'vitest';
import type { AuditCheckpointService } from '../audit/audit-checkpoint.service';
import type { AuditEvent, AuditTrail } from '../audit/audit-trail';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { HubConfig } from '../config/config.schema';
import type { RoundOpener } from '../rounds/round-opener.service';
import type { RoundsService } from '../rounds/rounds.service';
import type { HeldRound, StudyEntity } from '../study-state/study.entity';
import { heartDiseasePlan } from './heart-disease-plan';
import { InMemoryStudies } from './in-memory-studies.test-util';
import type { OpenTransaction, StudiesRepository } from './studies.repository';
import { StudiesService } from './studies.service';
import { StudyLifecycleService } from './study-lifecycle.service';

const ADMIN = { type: 'user', id: 'admin-1', name: 'root' } as const;
const HELD: HeldRound = { number: 4, attempt: 1, kind: 'train', modelHash: 'c'.repeat(64) };

function harness() {
  const store = new InMemoryStudies();
  const written: { event: AuditEvent; tx: number | undefined }[] = [];
  const audit = {
    record: (event: AuditEvent) => Promise.resolve(void written.push({ event, tx: store.openTransaction() })),
  } as unknown as AuditTrail;
  const records = () => written.filter((r) => r.tx === undefined || store.didCommit(r.tx));
  const opened: { studyId: string; round: HeldRound; tx: number }[] = [];
  const opener = {
    open: (tx: OpenTransaction, study: StudyEntity, round: HeldRound) =>
      Promise.resolve(void opened.push({ studyId: study.id, round, tx: InMemoryStudies.transactionOf(tx) })).then(
        () => [],
      ),
  } as unknown as RoundOpener;
  const charged: string[] = [];
  const rounds = {
    auditCharges: (studyId: string) => Promise.resolve(void charged.push(studyId)),
    wake: () => undefined,
  } as unknown as RoundsService;
  const repository = store.studies as unknown as StudiesRepository;
  const config = { aggregationMemory: 1 << 30, aggregationBlockParameters: 1 << 20 } as HubConfig;
  const checkpoints = { checkpointNow: () => Promise.resolve() } as unknown as AuditCheckpointService;
  const studies = new StudiesService(repository, rounds, audit, checkpoints, config);
  const service = new StudyLifecycleService(repository, studies, opener, rounds, audit);
  const silos = ['Basel', 'Bern'].map((name) => store.seedSilo({ name }).id);
  const seed = (fields: Partial<StudyEntity>, plan: StudyPlan = heartDiseasePlan(silos)) =>
    store.seedStudy({ name: plan.name, plan, participants: silos, ...fields });
  return { store, service, records, opened, charged, seed };
}

async function refusal(work: Promise<unknown>): Promise<HubException> {
  const err = await work.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HubException);
  return err as HubException;
}

describe('StudyLifecycleService over the studies repository', () => {
  let h: ReturnType<typeof harness>;
  beforeEach(() => {
    h = harness();
  });

  it('pauses a running study once: of two pauses together, the second waits for the lock and is refused', async () => {
    const study = h.seed({ status: 'running' });
    const [first, second] = await Promise.allSettled([
      h.service.pause(study.id, 'audit', ADMIN),
      h.service.pause(study.id, 'audit again', ADMIN),
    ]);
    expect(first.status).toBe('fulfilled');
    expect(second.status).toBe('rejected');
    const err = (second as PromiseRejectedResult).reason as HubException;
    expect([err.code, err.message]).toEqual([HubErrorCode.STUDY_STATE, expect.stringContaining('already paused')]);
    expect(h.store.studyRows[0]).toMatchObject({ pauseReason: 'audit' });
    expect(h.records().map((r) => r.event.action)).toEqual(['study.paused']);
  });

  it('refuses to pause a study that is not running', async () => {
    const study = h.seed({ status: 'awaiting_approvals' });
    expect((await refusal(h.service.pause(study.id, 'x', ADMIN))).code).toBe(HubErrorCode.STUDY_STATE);
    expect(h.records()).toEqual([]);
  });

  it('resumes: opens the held round in the resume transaction, charges audited there, the pause cleared', async () => {
    const since = new Date('2026-01-02T03:04:05Z');
    const study = h.seed({ status: 'running', pausedAt: since, pauseReason: 'audit', pausedNextRound: HELD });
    const view = await h.service.resume(study.id, ADMIN);
    expect(view.paused).toBeNull();
    expect(h.store.studyRows[0]).toMatchObject({ pausedAt: null, pauseReason: null, pausedNextRound: null });
    const [record] = h.records();
    expect(record!.event).toMatchObject({
      action: 'study.resumed',
      details: { pausedSince: since.toISOString(), openedRound: 4, attempt: 1, kind: 'train' },
    });
    expect(h.opened).toEqual([{ studyId: study.id, round: HELD, tx: record!.tx }]);
    expect(h.charged).toEqual([study.id]);
  });

  it('resumes a study whose round is still under way without opening one, and refuses one not paused', async () => {
    const study = h.seed({ status: 'running', pausedAt: new Date(), pauseReason: 'x' });
    await h.service.resume(study.id, ADMIN);
    expect(h.opened).toEqual([]);
    expect(h.charged).toEqual([]);
    expect((await refusal(h.service.resume(study.id, ADMIN))).code).toBe(HubErrorCode.STUDY_STATE);
  });

  it('archives only drafts and ended studies; an archived study unarchives once', async () => {
    const running = h.seed({ status: 'running' });
    expect((await refusal(h.service.archive(running.id, ADMIN))).code).toBe(HubErrorCode.STUDY_STATE);
    const stopped = h.seed({ status: 'stopped' });
    const archived = await h.service.archive(stopped.id, ADMIN);
    expect(archived.archivedAt).not.toBeNull();
    expect((await refusal(h.service.archive(stopped.id, ADMIN))).code).toBe(HubErrorCode.STUDY_STATE);
    expect((await h.service.unarchive(stopped.id, ADMIN)).archivedAt).toBeNull();
    expect((await refusal(h.service.unarchive(stopped.id, ADMIN))).code).toBe(HubErrorCode.STUDY_STATE);
    expect(h.records().map((r) => [r.event.action, r.event.details])).toEqual([
      ['study.archived', { status: 'stopped' }],
      ['study.unarchived', { archivedAt: archived.archivedAt }],
    ]);
    expect((await refusal(h.service.pause('00000000-0000-4000-8000-000000000001', 'x', ADMIN))).code).toBe(
      HubErrorCode.NOT_FOUND,
    );
  });

  it('clones an archived study as a new draft with a new hash, recording the clone on the source', async () => {
    const source = h.seed({ status: 'completed', archivedAt: new Date(), planVersion: 3 });
    const clone = await h.service.clone(source.id, ADMIN);
    expect(clone).toMatchObject({ status: 'draft', planVersion: 1, clonedFrom: source.id, archivedAt: null });
    expect(clone.planHash).not.toBe(source.planHash);
    expect(h.records().map((r) => [r.event.action, r.event.subject])).toEqual([
      ['study.created', { studyId: clone.id }],
      ['study.cloned', { studyId: source.id }],
    ]);
  });
});
