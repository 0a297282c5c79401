import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { BlobStore } from '../blobs/blob-store';
import type { PrivacyLedgerService } from '../privacy/privacy-ledger.service';
import type { SecAggSessionsService } from '../secagg/secagg-sessions.service';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import { InMemoryRounds, type FakeHandle } from './in-memory-rounds.test-util';
import { RoundOpener } from './round-opener.service';
import type { RoundsRepository } from './rounds.repository';

const [A, B, C] = [randomUUID(), randomUUID(), randomUUID()];

function harness(refused: string[] = []) {
  const store = new InMemoryRounds();
  const charged: { transaction: number; silos: string[] }[] = [];
  const ledger = {
    mechanismOf: () => null,
    planLimits: () => Promise.resolve(refused.map((siloId) => ({ siloId, reason: 'past its plan' }))),
    chargeIssued: (tx: FakeHandle, _study: unknown, _round: unknown, silos: string[]) => {
      charged.push({ transaction: tx.transaction, silos });
      return Promise.resolve([]);
    },
  } as unknown as PrivacyLedgerService;
  const opener = new RoundOpener(
    store as unknown as RoundsRepository,
    { put: () => Promise.resolve('ab'.repeat(32)) } as unknown as BlobStore,
    ledger,
    {} as SecAggSessionsService,
  );
  const study = store.seedStudy({ plan: heartDiseasePlan([A, B, C]), participants: [A, B, C] });
  return { store, opener, study, charged };
}

const attempt = { number: 2, attempt: 1, kind: 'train' as const, modelHash: 'cd'.repeat(32) };

// Round 1 builds the initial model (initialModel): slow on a loaded machine.
describe('RoundOpener over its repository', { timeout: 30_000 }, () => {
  it("opens a round in the caller's transaction: invisible until it commits, charged in that same transaction", async () => {
    const h = harness();
    let seenInside = 0;
    await h.store.inTransaction(async (tx) => {
      await h.opener.open(tx.open, h.study, attempt);
      seenInside = h.store.rounds.length;
      expect(h.charged).toEqual([{ transaction: (tx.open as unknown as FakeHandle).transaction, silos: [A, B, C] }]);
    });
    expect(seenInside).toBe(0);
    const [round] = h.store.rounds;
    expect(round).toMatchObject({ number: 2, attempt: 1, kind: 'train', status: 'open', modelHash: 'cd'.repeat(32) });
    expect(round!.deadlineAt.getTime() - round!.openedAt.getTime()).toBe(60_000);
    expect(h.store.participants.map((p) => [p.siloId, p.status])).toEqual([
      [A, 'waiting'],
      [B, 'waiting'],
      [C, 'waiting'],
    ]);
  });

  it('leaves nothing behind when the caller rolls back', async () => {
    const h = harness();
    await expect(
      h.store.inTransaction(async (tx) => {
        await h.opener.open(tx.open, h.study, attempt);
        throw new Error('the start failed');
      }),
    ).rejects.toThrow('the start failed');
    expect(h.store.rounds).toEqual([]);
    expect(h.store.participants).toEqual([]);
  });

  it('does not ask an evaluation of a silo whose approved plan it would break', async () => {
    const h = harness([B]);
    await h.store.inTransaction((tx) => h.opener.open(tx.open, h.study, { ...attempt, kind: 'evaluate' }));
    expect(h.store.participants.map((p) => p.siloId)).toEqual([A, C]);
    expect(h.charged.map((c) => c.silos)).toEqual([[A, C]]);
  });

  it('refuses a second round with the same number and attempt (rounds_study_number_attempt)', async () => {
    const h = harness();
    await h.store.inTransaction((tx) => h.opener.open(tx.open, h.study, attempt));
    await expect(h.store.inTransaction((tx) => h.opener.open(tx.open, h.study, attempt))).rejects.toThrow(
      'rounds_study_number_attempt',
    );
    expect(h.store.rounds).toHaveLength(1);
  });

  it('round 1 sets the initial model on the study; stopping abandons the open and closing rounds only', async () => {
    const h = harness();
    await h.store.inTransaction((tx) => h.opener.openFirstRound(tx.open, h.study));
    expect(h.store.studies[0]).toMatchObject({ currentModelHash: 'ab'.repeat(32), optimizerStateHash: null });
    const closed = h.store.seedRound({ studyId: h.study.id, number: 0, status: 'closed' });
    await h.store.inTransaction((tx) => h.opener.abandonOpenRounds(tx.open, h.study.id));
    const statuses = new Map(h.store.rounds.map((r) => [r.id, r.status]));
    expect(statuses.get(closed.id)).toBe('closed');
    expect([...statuses.values()].sort()).toEqual(['abandoned', 'closed']);
  });
});
