import { randomUUID } from 'node:crypto';
import { chargedEpsilon, privacySpendOf } from '@tessera/dp';
import type { PrivacySpend, StudyPlan } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import type { AuditEvent, AuditTrail } from '../audit/audit-trail';
import { UniqueViolation } from '../silos/in-memory-silos.test-util';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import { InMemoryPrivacy } from './in-memory-privacy.test-util';
import { PrivacyLedgerService, type PrivacyCharge } from './privacy-ledger.service';
import type { OpenTransaction, PrivacyRepository } from './privacy.repository';

const A = randomUUID();
const B = randomUUID();
const C = randomUUID();

function dpPlan(rounds = 2): StudyPlan {
  const plan = heartDiseasePlan([A, B, C], {
    privacy: {
      mode: 'dp-sgd',
      unit: 'record',
      targetEpsilon: 1,
      delta: 1e-5,
      clipNorm: 1,
      noiseMultiplier: 'derive',
      samplingRate: 0.1,
    },
  });
  plan.training.rounds = rounds;
  return plan;
}

const dpStudy = () => ({ id: randomUUID(), planHash: 'dp-plan', plan: dpPlan() });

interface Recorded {
  readonly event: AuditEvent;
  readonly tx: number | undefined;
}

function harness() {
  const store = new InMemoryPrivacy();
  const written: Recorded[] = [];
  const audit = {
    record: (event: AuditEvent) => Promise.resolve(void written.push({ event, tx: store.openTransaction() })),
  } as unknown as AuditTrail;
  // A record joins its transaction (AmbientTransactions): one written in a transaction that rolled back is gone.
  const records = () => written.filter((r) => r.tx === undefined || store.didCommit(r.tx)).map((r) => r.event);
  const ledger = new PrivacyLedgerService(store as unknown as PrivacyRepository, audit);
  /** What the round opener does in its transaction: check the plan's limits, charge, record the charges. */
  const open = async (
    tx: OpenTransaction,
    study: ReturnType<typeof dpStudy>,
    round: { number: number; attempt: number; kind: 'train' | 'evaluate' },
    silos: string[],
  ): Promise<{ refused: { siloId: string; reason: string }[]; charges: PrivacyCharge[] }> => {
    const refused = await ledger.planLimits(tx, study, round, silos);
    if (refused.length > 0) return { refused, charges: [] };
    const charges = await ledger.chargeIssued(tx, study, round, silos);
    await ledger.auditCharges(study.id, charges);
    return { refused, charges };
  };
  return { store, ledger, records, open };
}

/** The silo's own report of a task, as the agent computes it with the same accountant. */
function reportOf(ledger: PrivacyLedgerService, study: ReturnType<typeof dpStudy>, rounds: number): PrivacySpend {
  const m = ledger.mechanismOf(study.planHash, study.plan)!;
  return privacySpendOf(m, rounds, 0, { trainingRounds: 1, evaluationReleases: 0 }, 0);
}

describe('PrivacyLedgerService (against an in-memory ledger with the real unique indexes)', () => {
  it('charges each silo once per round and kind: a retried attempt charges only the silos not charged yet', async () => {
    const { store, ledger, records, open } = harness();
    const study = dpStudy();
    const first = await store.inTransaction((tx) => open(tx, study, { number: 1, attempt: 1, kind: 'train' }, [A, B]));
    expect(first.charges.map((c) => c.siloId)).toEqual([A, B]);
    const retry = await store.inTransaction((tx) =>
      open(tx, study, { number: 1, attempt: 2, kind: 'train' }, [A, B, C]),
    );
    expect(retry.refused).toEqual([]);
    expect(retry.charges.map((c) => [c.siloId, c.attempt])).toEqual([[C, 2]]);

    const entries = await ledger.ledger(study.id);
    expect(entries.map((e) => [e.siloId, e.round, e.attempt, e.chargedOn])).toEqual([
      [A, 1, 1, 'issued'],
      [B, 1, 1, 'issued'],
      [C, 1, 2, 'issued'],
    ]);
    const budgets = await ledger.budgets(ledger.manager(), study, [A, B, C]);
    expect(budgets.map((b) => b.trainingRounds)).toEqual([1, 1, 1]);
    expect(records().map((e) => [e.action, e.subject?.siloId, (e.details as { attempt: number }).attempt])).toEqual([
      ['privacy.charged', A, 1],
      ['privacy.charged', B, 1],
      ['privacy.charged', C, 2],
    ]);
  });

  it("charges the accountant's cumulative ε, never above the plan's target: the round past the plan is refused", async () => {
    const { store, ledger, open } = harness();
    const study = dpStudy();
    const m = ledger.mechanismOf(study.planHash, study.plan)!;
    const charged: PrivacyCharge[] = [];
    for (const number of [1, 2]) {
      const r = await store.inTransaction((tx) => open(tx, study, { number, attempt: 1, kind: 'train' }, [A]));
      expect(r.refused).toEqual([]);
      charged.push(...r.charges);
    }
    expect(charged.map((c) => c.spend.trainingRounds)).toEqual([1, 2]);
    expect(charged.map((c) => c.spend.epsilonCumulative)).toEqual([chargedEpsilon(m, 1, 0), chargedEpsilon(m, 2, 0)]);
    for (const c of charged) expect(c.spend.epsilonCumulative).toBeLessThanOrEqual(m.targetEpsilon);

    const third = await store.inTransaction((tx) => open(tx, study, { number: 3, attempt: 1, kind: 'train' }, [A]));
    expect(third.charges).toEqual([]);
    expect(third.refused).toEqual([{ siloId: A, reason: expect.stringContaining('2 training rounds') as string }]);
    // A retried attempt of a round already charged adds nothing, so it is not refused even at the plan's end.
    const retried = await store.inTransaction((tx) => open(tx, study, { number: 2, attempt: 2, kind: 'train' }, [A]));
    expect(retried).toEqual({ refused: [], charges: [] });
    const [budget] = await ledger.budgets(ledger.manager(), study, [A]);
    expect(budget).toMatchObject({ trainingRounds: 2, chargedTrainingRounds: 2, epsilon: chargedEpsilon(m, 2, 0) });
    expect(budget!.epsilon).toBeLessThanOrEqual(m.targetEpsilon);
  });

  it('charges the final evaluation once, apart from the training rounds', async () => {
    const { store, ledger, open } = harness();
    const study = dpStudy();
    const m = ledger.mechanismOf(study.planHash, study.plan)!;
    await store.inTransaction((tx) => open(tx, study, { number: 1, attempt: 1, kind: 'train' }, [A]));
    const evaluation = { number: 2, attempt: 1, kind: 'evaluate' } as const;
    const first = await store.inTransaction((tx) => open(tx, study, evaluation, [A]));
    expect(first.charges.map((c) => c.added.evaluationReleases)).toEqual([m.evaluation!.releases]);
    const again = await store.inTransaction((tx) => open(tx, study, { ...evaluation, attempt: 2 }, [A]));
    expect(again).toEqual({ refused: [], charges: [] });
    const [budget] = await ledger.budgets(ledger.manager(), study, [A]);
    expect(budget).toMatchObject({ trainingRounds: 1, evaluationReleases: m.evaluation!.releases });
  });

  it('rolls a charge and its audit record back with the round that failed to open; the next attempt charges', async () => {
    const { store, ledger, records, open } = harness();
    const study = dpStudy();
    await expect(
      store.inTransaction(async (tx) => {
        await open(tx, study, { number: 1, attempt: 1, kind: 'train' }, [A]);
        throw new Error('the round could not be stored');
      }),
    ).rejects.toThrow('could not be stored');
    expect(await ledger.ledger(study.id)).toEqual([]);
    expect(records()).toEqual([]);

    const next = await store.inTransaction((tx) => open(tx, study, { number: 1, attempt: 2, kind: 'train' }, [A]));
    expect(next.charges.map((c) => [c.siloId, c.attempt, c.spend.trainingRounds])).toEqual([[A, 2, 1]]);
    expect(records()).toHaveLength(1);
  });

  it("charges once when two hubs open the same round, queued by the round's row lock", async () => {
    const { store, ledger, records, open } = harness();
    const study = dpStudy();
    const opening = (attempt: number) =>
      store.inTransaction(async (tx) => {
        await store.lock(tx, `round:${study.id}:1`);
        return open(tx, study, { number: 1, attempt, kind: 'train' }, [A, B]);
      });
    const [one, two] = await Promise.all([opening(1), opening(2)]);
    expect([...one.charges, ...two.charges].map((c) => c.siloId).sort()).toEqual([A, B].sort());
    expect(await ledger.ledger(study.id)).toHaveLength(2);
    expect(records()).toHaveLength(2);
  });

  it('without the lock, the unique index refuses the second charge of a round: never two', async () => {
    const { store, ledger, open } = harness();
    const study = dpStudy();
    let entered!: () => void;
    const bothRead = new Promise<void>((resolve) => (entered = resolve));
    let reads = 0;
    const opening = (attempt: number) =>
      store.inTransaction(async (tx) => {
        const refused = await ledger.planLimits(tx, study, { number: 1, kind: 'train' }, [A]);
        if (++reads === 2) entered();
        await bothRead;
        return { refused, charges: (await open(tx, study, { number: 1, attempt, kind: 'train' }, [A])).charges };
      });
    const results = await Promise.allSettled([opening(1), opening(2)]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const failed = results.find((r) => r.status === 'rejected');
    expect(failed?.reason).toBeInstanceOf(UniqueViolation);
    expect(await ledger.ledger(study.id)).toHaveLength(1);
  });

  it("attaches a silo's report to its charge; a smaller later report is flagged and not stored", async () => {
    const { store, ledger, open } = harness();
    const study = dpStudy();
    const round = { number: 2, attempt: 1, kind: 'train' } as const;
    await store.inTransaction((tx) => open(tx, study, { number: 1, attempt: 1, kind: 'train' }, [A]));
    await store.inTransaction((tx) => open(tx, study, round, [A]));

    const agreeing = reportOf(ledger, study, 2);
    const outcome = await store.inTransaction((tx) => ledger.recordReport(tx, study, round, A, agreeing));
    expect(outcome).toMatchObject({ agrees: true, charge: { siloId: A, round: 2, attempt: 1 } });

    const smaller = reportOf(ledger, study, 1);
    const late = await store.inTransaction((tx) => ledger.recordReport(tx, study, round, A, smaller));
    expect(late?.agrees).toBe(false);
    const row = (await ledger.ledger(study.id)).find((e) => e.round === 2)!;
    expect(row).toMatchObject({ agrees: true, reported: agreeing });
  });

  it('believes a silo that reports more than the hub charged: its figure and the plan limit follow the report', async () => {
    const { store, ledger, records, open } = harness();
    const study = dpStudy();
    const round = { number: 1, attempt: 1, kind: 'train' } as const;
    await store.inTransaction((tx) => open(tx, study, round, [A]));
    // The agent retrained a retried round: it spent two rounds where the hub charged one.
    const more = reportOf(ledger, study, 2);
    await store.inTransaction(async (tx) => {
      const outcome = await ledger.recordReport(tx, study, round, A, more);
      expect(outcome?.agrees).toBe(false);
      await ledger.auditReport({ studyId: study.id, siloId: A, siloName: 'a', round: 1 }, outcome!, more);
    });
    const [budget] = await ledger.budgets(ledger.manager(), study, [A]);
    expect(budget).toMatchObject({ trainingRounds: 2, chargedTrainingRounds: 1, reportedTrainingRounds: 2 });
    expect(budget!.disagreements).toBe(1);
    expect(records().map((e) => e.action)).toEqual(['privacy.charged', 'privacy.disagreement']);
    const second = await store.inTransaction((tx) => open(tx, study, { number: 2, attempt: 1, kind: 'train' }, [A]));
    expect(second.refused.map((r) => r.siloId)).toEqual([A]);
  });

  it('charges a task issued before the hub charged on issue when its report arrives, then compares', async () => {
    const { store, ledger, records } = harness();
    const study = dpStudy();
    const round = { number: 1, attempt: 1, kind: 'train' } as const;
    const outcome = await store.inTransaction((tx) =>
      ledger.recordReport(tx, study, round, A, reportOf(ledger, study, 1)),
    );
    expect(outcome).toMatchObject({ agrees: true, charge: { siloId: A, added: { trainingRounds: 1 } } });
    expect((await ledger.ledger(study.id)).map((e) => [e.siloId, e.chargedOn, e.agrees])).toEqual([
      [A, 'issued', true],
    ]);
    expect(records()).toEqual([]);
  });

  it('charges nothing and refuses nothing under a plan without differential privacy', async () => {
    const { store, ledger, open } = harness();
    const study = { id: randomUUID(), planHash: 'plain', plan: heartDiseasePlan([A, B]) };
    const r = await store.inTransaction((tx) => open(tx, study, { number: 1, attempt: 1, kind: 'train' }, [A, B]));
    expect(r).toEqual({ refused: [], charges: [] });
    expect(await ledger.ledger(study.id)).toEqual([]);
    expect(await ledger.budgets(ledger.manager(), study, [A])).toEqual([]);
  });
});
