import { beforeEach, describe, expect, it } from 'vitest';
import type { AuditCheckpointService } from '../audit/audit-checkpoint.service';
import type { AuditTrail } from '../audit/audit-trail';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { HubConfig } from '../config/config.schema';
import type { RoundsQueryService } from '../rounds/rounds-query.service';
import type { RoundsService } from '../rounds/rounds.service';
import { heartDiseasePlan } from './heart-disease-plan';
import { InMemoryStudies } from './in-memory-studies.test-util';
import type { StudiesRepository } from './studies.repository';
import { StudiesService } from './studies.service';
import { StudyHistoryService } from './study-history.service';

function harness() {
  const store = new InMemoryStudies();
  const repository = store.studies as unknown as StudiesRepository;
  const studies = new StudiesService(
    repository,
    {} as RoundsService,
    {} as AuditTrail,
    {} as AuditCheckpointService,
    {} as HubConfig,
  );
  const asked: string[] = [];
  const rounds = {
    roundsOf: (studyId: string) => Promise.resolve(void asked.push(studyId)).then(() => []),
  } as unknown as RoundsQueryService;
  const service = new StudyHistoryService(repository, studies, rounds);
  const [basel, bern, chur] = ['Basel', 'Bern', 'Chur'].map((name) => store.seedSilo({ name }).id) as [
    string,
    string,
    string,
  ];
  return { store, service, asked, basel, bern, chur };
}

const at = (minute: number) => new Date(Date.UTC(2026, 0, 1, 12, minute));

describe('StudyHistoryService over the studies repository', () => {
  let h: ReturnType<typeof harness>;
  beforeEach(() => {
    h = harness();
  });

  it('lists every decision on every version oldest first, marking those on the current plan', async () => {
    const plan = heartDiseasePlan([h.basel, h.bern]);
    const study = h.store.seedStudy({ name: plan.name, plan, planVersion: 2, planHash: 'b'.repeat(64) });
    const decide = (siloId: string, planVersion: number, planHash: string, decision: 'approve' | 'reject', m: number) =>
      h.store.studies.inTransaction((tx) =>
        tx.insertDecision({
          studyId: study.id,
          siloId,
          planVersion,
          planHash,
          decision,
          reason: decision === 'reject' ? 'no' : null,
          decidedAt: at(m),
        }),
      );
    await decide(h.bern, 2, 'b'.repeat(64), 'approve', 30);
    await decide(h.basel, 1, 'a'.repeat(64), 'reject', 10);
    await decide(h.basel, 2, 'b'.repeat(64), 'approve', 20);
    const history = await h.service.decisions(study.id);
    expect(history.currentPlanVersion).toBe(2);
    expect(history.decisions.map((d) => [d.siloName, d.planVersion, d.decision, d.current])).toEqual([
      ['Basel', 1, 'reject', false],
      ['Basel', 2, 'approve', true],
      ['Bern', 2, 'approve', true],
    ]);
  });

  it('lists every plan version with what it changed from the one before', async () => {
    const first = heartDiseasePlan([h.basel, h.bern]);
    const second = heartDiseasePlan([h.basel, h.bern, h.chur]);
    const study = h.store.seedStudy({ name: first.name, plan: second, planVersion: 2 });
    await h.store.studies.inTransaction(async (tx) => {
      await tx.insertPlanVersion({ studyId: study.id, version: 2, planHash: 'b'.repeat(64), plan: second });
      await tx.insertPlanVersion({ studyId: study.id, version: 1, planHash: 'a'.repeat(64), plan: first });
    });
    const { versions } = await h.service.planVersions(study.id);
    expect(versions.map((v) => [v.version, v.planHash[0], v.changes.map((c) => c.path)])).toEqual([
      [1, 'a', []],
      [2, 'b', ['silos']],
    ]);
  });

  it("shows a study's rounds with its participants, or its invited silos before it started", async () => {
    const plan = heartDiseasePlan([h.basel, h.bern, h.chur]);
    const draft = h.store.seedStudy({ name: plan.name, plan });
    expect((await h.service.roundHistory(draft.id)).silos.map((s) => s.name)).toEqual(['Basel', 'Bern', 'Chur']);
    const running = h.store.seedStudy({ name: plan.name, plan, status: 'running', participants: [h.chur, h.bern] });
    expect((await h.service.roundHistory(running.id)).silos.map((s) => s.name)).toEqual(['Chur', 'Bern']);
    expect(h.asked).toEqual([draft.id, running.id]);
  });

  it('answers NOT_FOUND for a study that does not exist', async () => {
    const missing = '00000000-0000-4000-8000-000000000001';
    for (const read of [h.service.decisions(missing), h.service.planVersions(missing)]) {
      await expect(read).rejects.toSatisfy((e) => e instanceof HubException && e.code === HubErrorCode.NOT_FOUND);
    }
  });
});
