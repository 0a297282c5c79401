import { float32Bytes } from '@tessera/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import type { HubConfig } from '../config/config.schema';
import type { PrivacyLedgerService } from '../privacy/privacy-ledger.service';
import type { SecAggSessionsService } from '../secagg/secagg-sessions.service';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import { InMemoryRounds } from './in-memory-rounds.test-util';
import { float32FromBytes } from './model-math';
import { RoundAggregator } from './round-aggregator.service';
import type { RoundsRepository } from './rounds.repository';
import { honestUpdates, storeUpdates } from './stored-updates.test-util';

/** The heart-disease plan's logistic regression: 13 features and a bias. */
const PARAMETERS = 14;

async function harness(updates: number) {
  const bed = await storeUpdates(honestUpdates(updates, PARAMETERS, 7));
  const store = new InMemoryRounds();
  const silos = bed.stored.map((s) => s.siloId);
  const study = store.seedStudy({ plan: heartDiseasePlan(silos), participants: silos });
  const modelHash = await bed.blobs.put(float32Bytes(new Float32Array(PARAMETERS)));
  const round = store.seedRound({ studyId: study.id, modelHash, status: 'closing' }, silos);
  for (const s of bed.stored) {
    store.seedParticipant(round.id, s.siloId, { status: 'uploaded', updateHash: s.hash, l2Norm: s.l2Norm });
  }
  const config = { aggregationMemory: 1 << 30, aggregationBlockParameters: 1 << 20, aggregationThreads: 0 };
  const aggregator = new RoundAggregator(
    store as unknown as RoundsRepository,
    bed.blobs,
    { mechanismOf: () => null } as unknown as PrivacyLedgerService,
    config as HubConfig,
    {} as SecAggSessionsService,
  );
  return { ...bed, store, round, silos, aggregator };
}

describe('RoundAggregator (step 2 of a close) over its repository', { timeout: 30_000 }, () => {
  let dispose = () => undefined as void;
  afterEach(() => dispose());

  it('aggregates the usable updates of the claimed round into a stored model, changing no row', async () => {
    const h = await harness(3);
    dispose = h.dispose;
    const before = h.store.rounds;
    const aggregate = await h.aggregator.aggregateClaimed(h.round.id, { verifyMs: 0 });
    expect([...aggregate.aggregated].sort()).toEqual([...h.silos].sort());
    expect(aggregate.unusable.size).toBe(0);
    expect(float32FromBytes(await h.blobs.get(aggregate.resultHash))).toHaveLength(PARAMETERS);
    expect(await h.blobs.has(aggregate.stateHash)).toBe(true);
    expect(h.store.rounds).toEqual(before);
  });

  it('sets aside an update whose stored bytes are gone, and aggregates the others', async () => {
    const h = await harness(3);
    dispose = h.dispose;
    const missing = 'ef'.repeat(32);
    h.store.seedParticipant(h.round.id, h.silos[2]!, { updateHash: missing });
    const aggregate = await h.aggregator.aggregateClaimed(h.round.id, { verifyMs: 0 });
    expect([...aggregate.aggregated].sort()).toEqual([h.silos[0], h.silos[1]].sort());
    expect(aggregate.unusable.get(h.silos[2]!)).toMatch(new RegExp(`^the stored update ${missing} cannot be read`));
  });

  it('returns no aggregate when fewer usable updates remain than the plan needs', async () => {
    const h = await harness(2);
    dispose = h.dispose;
    h.store.seedParticipant(h.round.id, h.silos[1]!, { updateHash: 'ef'.repeat(32) });
    const aggregate = await h.aggregator.aggregateClaimed(h.round.id, { verifyMs: 0 });
    expect(aggregate).toMatchObject({ aggregated: [], resultHash: '', stateHash: '' });
    expect([...aggregate.unusable.keys()]).toEqual([h.silos[1]]);
  });
});
