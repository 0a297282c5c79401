import { randomUUID } from 'node:crypto';
import { chargedEpsilon } from '@tessera/dp';
import { describe, expect, it } from 'vitest';
import type { AuditTrail } from '../audit/audit-trail';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { SiloEntity } from '../silos/silo.entity';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import type { StudyEntity } from '../study-state/study.entity';
import { InMemoryPrivacy } from './in-memory-privacy.test-util';
import { PrivacyLedgerService } from './privacy-ledger.service';
import type { PrivacyRepository } from './privacy.repository';
import { SiloPrivacyService } from './silo-privacy.service';

const A = randomUUID();
const B = randomUUID();
let created = 0;

function study(fields: Partial<StudyEntity>): StudyEntity {
  return {
    id: randomUUID(),
    name: 'study',
    status: 'running',
    planHash: randomUUID(),
    plan: heartDiseasePlan([A, B]),
    privacyCost: null,
    participants: [A, B],
    createdAt: new Date(Date.UTC(2026, 11, 1) + ++created * 1000),
    ...fields,
  } as StudyEntity;
}

function harness() {
  const store = new InMemoryPrivacy();
  store.silos.set(A, { id: A, name: 'hospital-a' } as SiloEntity);
  const audit = { record: () => Promise.resolve() } as unknown as AuditTrail;
  const ledger = new PrivacyLedgerService(store as unknown as PrivacyRepository, audit);
  const service = new SiloPrivacyService(store as unknown as PrivacyRepository, ledger);
  return { store, ledger, service };
}

describe('SiloPrivacyService (against the in-memory ledger)', () => {
  it('answers NOT_FOUND for a silo the hub does not know', async () => {
    const { service } = harness();
    const refused = await service.ofSilo(randomUUID()).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(HubException);
    expect((refused as HubException).code).toBe(HubErrorCode.NOT_FOUND);
  });

  it("lists the studies past draft that invited the silo, with the hub's ε for DP ones, and sums them", async () => {
    const { store, ledger, service } = harness();
    const dp = study({
      name: 'dp',
      plan: heartDiseasePlan([A, B], {
        privacy: {
          mode: 'dp-sgd',
          unit: 'record',
          targetEpsilon: 1,
          delta: 1e-5,
          clipNorm: 1,
          noiseMultiplier: 'derive',
          samplingRate: 0.1,
        },
      }),
    });
    const plain = study({ name: 'plain' });
    const draft = study({ name: 'draft', status: 'draft' });
    const other = study({ name: 'other', plan: heartDiseasePlan([B]), participants: [B] });
    for (const s of [dp, plain, draft, other]) store.studies.set(s.id, s);
    await store.inTransaction((tx) => ledger.chargeIssued(tx, dp, { number: 1, attempt: 1, kind: 'train' }, [A]));

    const view = await service.ofSilo(A);
    const m = ledger.mechanismOf(dp.planHash, dp.plan)!;
    expect(view.siloName).toBe('hospital-a');
    expect(view.studies.map((l) => [l.studyName, l.mode, l.epsilon, l.trainingRounds])).toEqual([
      ['dp', 'dp-sgd', chargedEpsilon(m, 1, 0), 1],
      ['plain', 'none', null, null],
    ]);
    expect(view.total).toEqual({
      composition: 'basic',
      epsilon: chargedEpsilon(m, 1, 0),
      delta: 1e-5,
      studies: 1,
      withoutPrivacy: 1,
    });
  });
});
