import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import { InMemoryRounds } from './in-memory-rounds.test-util';
import type { RoundViewsRepository } from './round-views.repository';
import { RoundsQueryService } from './rounds-query.service';

describe('RoundsQueryService over its repository', () => {
  it("lists a study's attempts in order with their silos by name, without the aggregation trace", async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    const store = new InMemoryRounds();
    const study = store.seedStudy({ plan: heartDiseasePlan([a, b]), participants: [a, b] });
    const summary = {
      reported: 1,
      participants: 2,
      totalExamples: null,
      evaluation: {
        accuracy: { unweighted: null, weighted: null },
        loss: { unweighted: null, weighted: null },
        auc: { unweighted: null },
      },
      aggregationTrace: [{ step: 'fedavg' }],
    };
    const retried = store.seedRound({ studyId: study.id, status: 'retried', closedAt: new Date(), summary }, [a, b]);
    store.seedParticipant(retried.id, a, { status: 'uploaded', updateHash: 'ab'.repeat(32), numExamples: 40 });
    store.seedRound({ studyId: study.id, attempt: 2 }, [a]);
    const rounds = store.rounds;
    const views = {
      history: () =>
        Promise.resolve({
          rounds,
          participants: store.participants,
          siloNames: new Map([[a, 'Basel']]),
        }),
    } as unknown as RoundViewsRepository;
    const listed = await new RoundsQueryService(views).roundsOf(study.id);
    expect(listed.map((r) => [r.number, r.attempt, r.status])).toEqual([
      [1, 1, 'retried'],
      [1, 2, 'open'],
    ]);
    expect(listed[0]!.summary).not.toHaveProperty('aggregationTrace');
    expect(listed[0]!.summary).toMatchObject({ reported: 1, participants: 2 });
    expect(listed[1]!.summary).toBeNull();
    const names = new Map(listed[0]!.participants.map((p) => [p.siloId, [p.siloName, p.status, p.updateSha256]]));
    expect(names).toEqual(
      new Map([
        [a, ['Basel', 'uploaded', 'ab'.repeat(32)]],
        [b, ['unknown', 'waiting', null]],
      ]),
    );
  });
});
