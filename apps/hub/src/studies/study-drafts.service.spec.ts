import { beforeEach, describe, expect, it } from 'vitest';
import type { AuditEvent, AuditTrail } from '../audit/audit-trail';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { heartDiseasePlan } from './heart-disease-plan';
import { InMemoryStudies } from './in-memory-studies.test-util';
import type { StudyDraftsRepository } from './study-drafts.repository';
import { draftTitle, StudyDraftsService } from './study-drafts.service';

const ALICE = { type: 'user', id: 'admin-alice', name: 'alice' } as const;
const BOB = { type: 'user', id: 'admin-bob', name: 'bob' } as const;

function harness() {
  const store = new InMemoryStudies();
  const written: { event: AuditEvent; tx: number | undefined }[] = [];
  let failOn: string | null = null;
  const audit: AuditTrail = {
    record: (event: AuditEvent) => {
      written.push({ event, tx: store.openTransaction() });
      return event.action === failOn ? Promise.reject(new Error('audit chain unavailable')) : Promise.resolve();
    },
  };
  const records = () => written.filter((r) => r.tx === undefined || store.didCommit(r.tx));
  const service = new StudyDraftsService(store.drafts as unknown as StudyDraftsRepository, audit);
  const study = (status: 'draft' | 'running', archivedAt: Date | null = null) =>
    store.seedStudy({ name: 'Heart', plan: heartDiseasePlan([]), status, archivedAt });
  return { store, service, records, study, failAuditOn: (action: string) => (failOn = action) };
}

async function refusal(work: Promise<unknown>): Promise<HubException> {
  const err = await work.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HubException);
  return err as HubException;
}

describe('StudyDraftsService over its repository', () => {
  let h: ReturnType<typeof harness>;
  beforeEach(() => {
    h = harness();
  });

  it('titles a draft by the plan name typed so far', () => {
    expect(draftTitle({ name: '  Heart  ' })).toBe('Heart');
    expect(draftTitle({ name: '' })).toBe('Untitled draft');
    expect(draftTitle({ name: 7 })).toBe('Untitled draft');
    expect(draftTitle({ name: 'x'.repeat(300) })).toHaveLength(200);
  });

  it("keeps each administrator's drafts their own: listed, read, saved and deleted by their author only", async () => {
    const first = await h.service.create({ form: { name: 'Heart' }, step: 1 }, ALICE);
    const second = await h.service.create({ form: { name: 'Lungs' }, step: 2 }, ALICE);
    await h.service.create({ form: {}, step: 0 }, BOB);
    expect((await h.service.list(ALICE)).map((d) => d.title)).toEqual(['Lungs', 'Heart']);
    expect((await h.service.list(BOB)).map((d) => d.title)).toEqual(['Untitled draft']);

    expect((await refusal(h.service.get(first.id, BOB))).code).toBe(HubErrorCode.NOT_FOUND);
    expect((await refusal(h.service.save(first.id, { form: { name: 'Mine' }, step: 3 }, BOB))).code).toBe(
      HubErrorCode.NOT_FOUND,
    );
    expect((await refusal(h.service.remove(first.id, BOB))).code).toBe(HubErrorCode.NOT_FOUND);

    const saved = await h.service.save(first.id, { form: { name: 'Heart v2' }, step: 4 }, ALICE);
    expect(saved).toMatchObject({ title: 'Heart v2', step: 4, form: { name: 'Heart v2' } });
    expect((await h.service.list(ALICE)).map((d) => d.id)).toEqual([first.id, second.id]);
    await h.service.remove(second.id, ALICE);
    expect(h.store.draftRows.map((d) => [d.title, d.createdBy])).toEqual([
      ['Heart v2', ALICE.id],
      ['Untitled draft', BOB.id],
    ]);
    expect(h.records().map((r) => [r.event.action, r.tx !== undefined])).toEqual([
      ['study.draft.created', true],
      ['study.draft.created', true],
      ['study.draft.created', true],
      ['study.draft.saved', true],
      ['study.draft.deleted', true],
    ]);
    // The form's content stays out of the audit chain.
    expect(JSON.stringify(h.records().map((r) => r.event.details))).not.toContain('"form"');
  });

  it('drafts a new version only of a study whose plan may still change', async () => {
    const running = h.study('running');
    expect((await refusal(h.service.create({ form: {}, step: 0, studyId: running.id }, ALICE))).code).toBe(
      HubErrorCode.STUDY_STATE,
    );
    const archived = h.study('draft', new Date());
    expect((await refusal(h.service.create({ form: {}, step: 0, studyId: archived.id }, ALICE))).code).toBe(
      HubErrorCode.STUDY_STATE,
    );
    expect(
      (await refusal(h.service.create({ form: {}, step: 0, studyId: '00000000-0000-4000-8000-000000000001' }, ALICE)))
        .code,
    ).toBe(HubErrorCode.NOT_FOUND);
    const draft = h.study('draft');
    const created = await h.service.create({ form: { name: 'v2' }, step: 1, studyId: draft.id }, ALICE);
    expect(created.studyId).toBe(draft.id);
    expect(h.records().map((r) => r.event.subject)).toEqual([{ studyId: draft.id }]);
    expect(h.store.draftRows).toHaveLength(1);
  });

  it('keeps a save or a deletion whose audit record failed from happening (one transaction)', async () => {
    const draft = await h.service.create({ form: { name: 'Heart' }, step: 1 }, ALICE);
    h.failAuditOn('study.draft.saved');
    await expect(h.service.save(draft.id, { form: { name: 'Lost' }, step: 9 }, ALICE)).rejects.toThrow(
      'audit chain unavailable',
    );
    expect(await h.service.get(draft.id, ALICE)).toMatchObject({ title: 'Heart', step: 1 });
    h.failAuditOn('study.draft.deleted');
    await expect(h.service.remove(draft.id, ALICE)).rejects.toThrow('audit chain unavailable');
    expect(h.store.draftRows.map((d) => d.id)).toEqual([draft.id]);
  });
});
