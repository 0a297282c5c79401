import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import type { AuditCheckpointService } from '../audit/audit-checkpoint.service';
import type { AuditEvent, AuditTrail } from '../audit/audit-trail';
import type { BlobStore } from '../blobs/blob-store';
import type { HubConfig } from '../config/config.schema';
import type { PrivacyLedgerService } from '../privacy/privacy-ledger.service';
import type { SecAggSessionsService } from '../secagg/secagg-sessions.service';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import { InMemoryRounds } from './in-memory-rounds.test-util';
import type { Aggregate, RoundAggregator } from './round-aggregator.service';
import { RoundCloser } from './round-closer.service';
import { RoundOpener } from './round-opener.service';
import { CLOSE_LEASE_SECONDS, type RoundsRepository } from './rounds.repository';

const [A, B, C] = [randomUUID(), randomUUID(), randomUUID()];

/** A promise the test resolves when it wants the aggregation it stands for to finish. */
function gate(): { wait: Promise<void>; open(): void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

function aggregateOf(resultHash: string, aggregated: string[], unusable = new Map<string, string>()): Aggregate {
  const stateHash = 's'.repeat(64);
  return {
    aggregated,
    unusable,
    resultHash,
    stateHash,
    controlVariateHash: null,
    trace: [],
    excluded: [],
    screening: null,
  };
}

/** A stand-in for step 2 (RoundAggregator): counts its calls and finishes when the test opens its gate. */
class FakeAggregator {
  calls = 0;
  readonly started = gate();
  constructor(
    private readonly result: Aggregate,
    private readonly until: Promise<void> = Promise.resolve(),
  ) {}

  async aggregateClaimed(): Promise<Aggregate> {
    this.calls += 1;
    this.started.open();
    await this.until;
    return this.result;
  }
}

function harness(config: Partial<HubConfig> = { databaseUrl: 'postgres://server' }) {
  const store = new InMemoryRounds();
  const written: { event: AuditEvent; tx: number | undefined }[] = [];
  const audit = {
    record: (event: AuditEvent) => Promise.resolve(void written.push({ event, tx: store.openTransaction() })),
  } as unknown as AuditTrail;
  // A record joins its transaction (AmbientTransactions): one written in a transaction that rolled back is gone.
  const actions = () => written.filter((r) => r.tx === undefined || store.didCommit(r.tx)).map((r) => r.event.action);
  const ledger = {
    mechanismOf: () => null,
    planLimits: () => Promise.resolve([]),
    chargeIssued: () => Promise.resolve([]),
    auditCharges: () => Promise.resolve(),
  } as unknown as PrivacyLedgerService;
  let checkpoints = 0;
  const checkpointer = { checkpointNow: () => Promise.resolve(void (checkpoints += 1)) };
  const repository = store as unknown as RoundsRepository;
  const opener = new RoundOpener(repository, {} as BlobStore, ledger, {} as SecAggSessionsService);
  /** One hub's closer; two closers over one store are two hubs over one database. */
  const hub = (aggregator: FakeAggregator) =>
    new RoundCloser(
      repository,
      aggregator as unknown as RoundAggregator,
      audit,
      checkpointer as unknown as AuditCheckpointService,
      ledger,
      opener,
      config as HubConfig,
    );
  const study = store.seedStudy({ plan: heartDiseasePlan([A, B, C]), participants: [A, B, C] });
  return { store, actions, hub, study, checkpoints: () => checkpoints };
}

/** Round 1 of the study with every silo's update in: due at once, and aggregated. */
function reportedRound(h: ReturnType<typeof harness>) {
  const round = h.store.seedRound({ studyId: h.study.id }, [A, B, C]);
  for (const siloId of [A, B, C]) {
    h.store.seedParticipant(round.id, siloId, {
      status: 'uploaded',
      updateHash: siloId.replace(/-/g, '').padEnd(64, '0'),
    });
  }
  return round;
}

describe('RoundCloser over its repository', () => {
  let h: ReturnType<typeof harness>;
  beforeEach(() => {
    h = harness();
  });

  it('closes a round every silo reported: result recorded, next round opened, records in the same transaction', async () => {
    const round = reportedRound(h);
    const aggregator = new FakeAggregator(aggregateOf('r'.repeat(64), [A, B, C]));
    expect(await h.hub(aggregator).dueRounds(new Date())).toEqual([round.id]);
    await h.hub(aggregator).closeRound(round.id);
    const [first, second] = h.store.rounds;
    expect(first).toMatchObject({ status: 'closed', resultModelHash: 'r'.repeat(64), closeClaim: null });
    expect(first!.summary).toMatchObject({ reported: 3, participants: 3 });
    expect(second).toMatchObject({ number: 2, attempt: 1, status: 'open', modelHash: 'r'.repeat(64) });
    expect(h.store.participants.filter((p) => p.roundId === second!.id).map((p) => p.status)).toEqual([
      'waiting',
      'waiting',
      'waiting',
    ]);
    expect(h.store.studies[0]).toMatchObject({ currentModelHash: 'r'.repeat(64), optimizerStateHash: 's'.repeat(64) });
    expect(h.actions()).toEqual(['round.closed', 'round.opened']);
  });

  it('two hubs closing one round at once: one claims and aggregates, the other leaves it; closed once', async () => {
    const round = reportedRound(h);
    const first = new FakeAggregator(aggregateOf('1'.repeat(64), [A, B, C]));
    const second = new FakeAggregator(aggregateOf('2'.repeat(64), [A, B, C]));
    await Promise.all([h.hub(first).closeRound(round.id), h.hub(second).closeRound(round.id)]);
    expect(first.calls + second.calls).toBe(1);
    expect(h.store.rounds.map((r) => [r.number, r.attempt, r.status])).toEqual([
      [1, 1, 'closed'],
      [2, 1, 'open'],
    ]);
    expect(h.actions()).toEqual(['round.closed', 'round.opened']);
  });

  it('leaves a round another hub is aggregating under a live claim', async () => {
    const round = reportedRound(h);
    const release = gate();
    const holder = new FakeAggregator(aggregateOf('1'.repeat(64), [A, B, C]), release.wait);
    const closing = h.hub(holder).closeRound(round.id);
    await holder.started.wait;
    expect(h.store.rounds[0]).toMatchObject({ status: 'closing' });
    const other = new FakeAggregator(aggregateOf('2'.repeat(64), [A, B, C]));
    expect(await h.hub(other).dueRounds(new Date())).toEqual([]);
    await h.hub(other).closeRound(round.id);
    expect(other.calls).toBe(0);
    release.open();
    await closing;
    expect(h.store.rounds[0]).toMatchObject({ status: 'closed', resultModelHash: '1'.repeat(64) });
  });

  it('a lapsed claim is taken over; the first hub, finishing late, finds the claim not its own and commits nothing', async () => {
    const round = reportedRound(h);
    const slow = gate();
    const stalled = new FakeAggregator(aggregateOf('1'.repeat(64), [A, B, C]), slow.wait);
    const stalledClose = h.hub(stalled).closeRound(round.id);
    await stalled.started.wait;
    h.store.advance(CLOSE_LEASE_SECONDS + 1);
    const later = gate();
    const successor = new FakeAggregator(aggregateOf('2'.repeat(64), [A, B, C]), later.wait);
    expect(await h.hub(successor).dueRounds(new Date())).toEqual([round.id]);
    const successorClose = h.hub(successor).closeRound(round.id);
    await successor.started.wait;
    const claim = h.store.rounds[0]!.closeClaim;
    // The stalled hub finishes first while the round is still 'closing', under the successor's claim.
    slow.open();
    await stalledClose;
    expect(h.store.rounds[0]).toMatchObject({ status: 'closing', closeClaim: claim, resultModelHash: null });
    later.open();
    await successorClose;
    expect(h.store.rounds.map((r) => [r.number, r.status, r.resultModelHash])).toEqual([
      [1, 'closed', '2'.repeat(64)],
      [2, 'open', null],
    ]);
    expect(h.actions()).toEqual(['round.closed', 'round.opened']);
  });

  it('sets an unusable update aside in the commit, and closes with the others', async () => {
    const round = reportedRound(h);
    const unusable = new Map([[B, `the stored update ${'b'.repeat(64)} is corrupted on disk`]]);
    await h.hub(new FakeAggregator(aggregateOf('r'.repeat(64), [A, C], unusable))).closeRound(round.id);
    const rows = h.store.participants.filter((p) => p.roundId === round.id);
    expect(rows.find((p) => p.siloId === B)).toMatchObject({ status: 'failed', failure: { code: 'UPDATE_CORRUPTED' } });
    expect(h.store.rounds[0]).toMatchObject({ status: 'closed', summary: { reported: 2 } });
    expect(h.actions()).toEqual(['round.silo.failed', 'round.closed', 'round.opened']);
  });

  it('retries a round short of reports past its deadline: the waiting silos are late, attempt 2 opens', async () => {
    const round = h.store.seedRound({ studyId: h.study.id, deadlineAt: new Date(Date.now() - 1000) }, [A, B, C]);
    h.store.seedParticipant(round.id, A, { status: 'uploaded', updateHash: 'a'.repeat(64) });
    const aggregator = new FakeAggregator(aggregateOf('r'.repeat(64), []));
    await h.hub(aggregator).closeRound(round.id);
    expect(aggregator.calls).toBe(0);
    expect(h.store.rounds.map((r) => [r.number, r.attempt, r.status])).toEqual([
      [1, 1, 'retried'],
      [1, 2, 'open'],
    ]);
    const statuses = h.store.participants
      .filter((p) => p.roundId === round.id)
      .map((p) => [p.siloId, p.status] as const);
    expect(new Map(statuses)).toEqual(
      new Map([
        [A, 'uploaded'],
        [B, 'late'],
        [C, 'late'],
      ]),
    );
    expect(h.actions()).toEqual(['round.retried']);
  });

  it('fails the study when the last retry is short too, and seals it with a checkpoint', async () => {
    const round = h.store.seedRound({ studyId: h.study.id, attempt: 2, deadlineAt: new Date(Date.now() - 1000) }, [
      A,
      B,
      C,
    ]);
    await h.hub(new FakeAggregator(aggregateOf('r'.repeat(64), []))).closeRound(round.id);
    expect(h.store.rounds.map((r) => r.status)).toEqual(['failed']);
    expect(h.store.studies[0]).toMatchObject({ status: 'failed' });
    expect(h.actions()).toEqual(['study.failed']);
    expect(h.checkpoints()).toBe(1);
  });

  it('holds the next round back while the study is paused', async () => {
    const paused = harness();
    const study = paused.store.seedStudy({ plan: h.study.plan, participants: [A, B, C], pausedAt: new Date() });
    const r = paused.store.seedRound({ studyId: study.id }, [A, B, C]);
    for (const siloId of [A, B, C]) paused.store.seedParticipant(r.id, siloId, { status: 'uploaded' });
    await paused.hub(new FakeAggregator(aggregateOf('r'.repeat(64), [A, B, C]))).closeRound(r.id);
    expect(paused.store.rounds.filter((x) => x.studyId === study.id).map((x) => x.status)).toEqual(['closed']);
    expect(paused.store.studies.find((s) => s.id === study.id)!.pausedNextRound).toMatchObject({ number: 2 });
    expect(paused.actions()).toEqual(['round.closed', 'study.round.held']);
  });

  it('on the embedded database, a claim found at boot lapses at once (its hub died)', async () => {
    const embedded = harness({ databaseUrl: undefined });
    const round = reportedRound(embedded);
    const release = gate();
    const dead = new FakeAggregator(aggregateOf('1'.repeat(64), [A, B, C]), release.wait);
    void embedded.hub(dead).closeRound(round.id);
    await dead.started.wait;
    const restarted = embedded.hub(new FakeAggregator(aggregateOf('2'.repeat(64), [A, B, C])));
    expect(await restarted.dueRounds(new Date())).toEqual([]);
    await restarted.onModuleInit();
    expect(await restarted.dueRounds(new Date())).toEqual([round.id]);
    await restarted.closeRound(round.id);
    expect(embedded.store.rounds[0]).toMatchObject({ status: 'closed', resultModelHash: '2'.repeat(64) });
    release.open();
  });
});
