import { randomUUID } from 'node:crypto';
import { SecAggException } from '@tessera/secagg';
import { beforeAll, describe, expect, it } from 'vitest';
import { HubErrorCode } from '../common/hub.exception';
import { UniqueViolation } from '../silos/in-memory-silos.test-util';
import type { SiloIdentity } from '../silos/silo-identity';
import {
  advertiseAll,
  DEADLINE,
  EARLY,
  OPENED,
  PLAN,
  secaggHarness,
  shareAll,
  uploadAll,
  VECTOR_LENGTH,
  KEY_GENERATION_TIMEOUT_MS,
  warmIdentityKeys,
  fourSilos,
} from './secagg-protocol.test-util';
import type { OpenTransaction } from './secagg.repository';
import { waitMsOf } from './secagg.controller';

const silo = (siloId: string): SiloIdentity => ({
  siloId,
  name: 'Ash',
  certificateSerial: '01',
  certificateFingerprintSha256: '0'.repeat(64),
  certificateNotAfter: DEADLINE,
});

describe('SecAggSessionsService (against in-memory secure-aggregation tables with row locks and commits)', () => {
  beforeAll(() => warmIdentityKeys(4), KEY_GENERATION_TIMEOUT_MS);

  it('opens a session inside the round’s transaction: with its record, and not at all when that rolls back', async () => {
    const h = await secaggHarness(4);
    const opened = h.records('secagg.session.opened');
    expect(opened).toHaveLength(1);
    expect(opened[0]).toMatchObject({
      subject: { studyId: h.round.studyId, roundId: h.roundId },
      details: { participants: 4, threshold: PLAN.threshold, vectorLength: VECTOR_LENGTH },
    });
    expect(opened[0]!.details).not.toHaveProperty('distributedNoise');
    const session = await h.sessions.find(h.roundId);
    expect(session).toMatchObject({ stage: 'advertise', unmaskUntil: DEADLINE, exclusions: [], contributors: [] });
    expect(session!.advertiseUntil.getTime()).toBeGreaterThan(OPENED.getTime());

    // The round opener's transaction fails after the session was written: neither it nor its record remain.
    const other = { ...h.round, id: randomUUID() };
    const roster = h.silos.map((s) => s.id);
    await expect(
      h.store.inTransaction(async (tx) => {
        await h.sessions.open(tx as unknown as OpenTransaction, other, PLAN, roster, VECTOR_LENGTH);
        throw new Error('the round could not be opened');
      }),
    ).rejects.toThrow(/could not be opened/);
    expect(await h.sessions.find(other.id)).toBeNull();
    expect(h.records('secagg.session.opened')).toHaveLength(1);

    // A round has one session (the table's key).
    await expect(
      h.store.inTransaction((tx) =>
        h.sessions.open(tx as unknown as OpenTransaction, h.round, PLAN, roster, VECTOR_LENGTH),
      ),
    ).rejects.toBeInstanceOf(UniqueViolation);
  });

  it('refuses a roster too small for the plan’s threshold, before writing anything', async () => {
    const h = await secaggHarness(4);
    const round = { ...h.round, id: randomUUID() };
    await expect(
      h.store.inTransaction((tx) =>
        h.sessions.open(tx as unknown as OpenTransaction, round, PLAN, [h.silos[0]!.id, h.silos[1]!.id], 8),
      ),
    ).rejects.toBeInstanceOf(SecAggException);
    expect(await h.sessions.find(round.id)).toBeNull();
  });

  it('addresses only rounds that run the protocol, and only their participants', async () => {
    const h = await secaggHarness(4);
    const a = h.silos[0]!;
    expect(await h.sessions.roundFor(silo(a.id), h.round.studyId, 1)).toBe(h.roundId);
    const plain = randomUUID();
    h.store.openRounds.set(`${plain}/1`, randomUUID());
    await expect(h.sessions.roundFor(silo(a.id), plain, 1)).rejects.toMatchObject({
      code: HubErrorCode.NOT_FOUND,
      message: 'Round 1 does not run secure aggregation.',
    });
    const view = await h.sessions.view(h.roundId, a.id, EARLY);
    expect(view).toMatchObject({ stage: 'advertise', config: h.config, failure: null });
    await expect(h.sessions.view(h.roundId, randomUUID(), EARLY)).rejects.toMatchObject({
      code: HubErrorCode.FORBIDDEN,
    });
    await expect(h.sessions.view(randomUUID(), a.id, EARLY)).rejects.toMatchObject({ code: HubErrorCode.NOT_FOUND });
  });

  it('routes shares to those who shared, and asks only the survivors to unmask', async () => {
    const h = await secaggHarness(4);
    const [a, b, c, d] = fourSilos(h);
    const ads = await advertiseAll(h);
    expect(await h.sessions.routedShares(h.roundId, a.id, EARLY)).toMatchObject({ ready: false, stage: 'share' });
    // d does not share: when the stage closes at its deadline it has nothing routed to it.
    await shareAll(h, ads, [a, b, c]);
    const { shareUntil } = (await h.sessions.find(h.roundId))!;
    await expect(h.sessions.routedShares(h.roundId, d.id, shareUntil)).rejects.toMatchObject({
      code: HubErrorCode.ROUND_CLOSED,
    });
    expect(await h.sessions.unmaskingRequest(h.roundId, a.id, shareUntil)).toMatchObject({
      ready: false,
      stage: 'upload',
    });
    await expect(h.sessions.unmask(h.roundId)).rejects.toMatchObject({ code: HubErrorCode.CONFLICT });
    await uploadAll(h, [a, b, c], shareUntil);
    expect(await h.sessions.unmaskingRequest(h.roundId, d.id, shareUntil)).toEqual({ ready: true, request: null });
    const asked = await h.sessions.unmaskingRequest(h.roundId, a.id, shareUntil);
    expect(asked.ready).toBe(true);
    expect(asked.ready && asked.request?.survivors).toEqual(expect.arrayContaining([a.id, b.id, c.id]));
  });

  it('holds a stage view (long poll) until this hub moves the stage, and answers "not ready" when the wait ends', async () => {
    const h = await secaggHarness(4);
    const [a, b, c, d] = fourSilos(h);
    for (const s of [a, b, c]) await h.messages.advertise(h.roundId, s.id, s.advertisement(h.config), EARLY);
    let reads = 0;
    const read = (now: Date) => {
      reads += 1;
      return h.sessions.advertisements(h.roundId, a.id, now);
    };
    // Nothing moves: the view as it stands once the wait ends.
    const fixedClock = { clock: () => EARLY };
    expect(await h.sessions.waitFor(h.roundId, 50, read, fixedClock)).toMatchObject({
      ready: false,
      stage: 'advertise',
    });
    // The last advertisement closes the stage: the held read answers then, not after its minute-long wait or poll.
    reads = 0;
    const held = h.sessions.waitFor(h.roundId, 60_000, read, { ...fixedClock, pollMs: 60_000 });
    await new Promise((r) => setTimeout(r, 20));
    expect(reads).toBe(1);
    await h.messages.advertise(h.roundId, d.id, d.advertisement(h.config), EARLY);
    const view = await held;
    expect(view.ready).toBe(true);
    expect(view.ready && view.advertisements.map((x) => x.participantId).sort()).toEqual(
      [a.id, b.id, c.id, d.id].sort(),
    );
    expect(reads).toBe(2);

    // The hub stops: a held view answers at once with the view as it stands, not after its wait.
    const h2 = await secaggHarness(4);
    const [a2] = fourSilos(h2);
    const stopping = h2.sessions.waitFor(
      h2.roundId,
      60_000,
      (now) => h2.sessions.advertisements(h2.roundId, a2.id, now),
      { ...fixedClock, pollMs: 60_000 },
    );
    await new Promise((r) => setTimeout(r, 20));
    h2.stages.onModuleDestroy();
    expect(await stopping).toMatchObject({ ready: false, stage: 'advertise' });
  }, 20_000);

  it("takes a long poll's wait in whole seconds from 0 to 30, and refuses anything else naming the range", () => {
    expect(waitMsOf(undefined)).toBe(0);
    expect(waitMsOf('0')).toBe(0);
    expect(waitMsOf('10')).toBe(10_000);
    expect(waitMsOf('30')).toBe(30_000);
    for (const bad of ['31', '-1', '1.5', 'abc', '', '1e1', '010', ' 5']) {
      expect(() => waitMsOf(bad)).toThrow(/wait must be a whole number of seconds from 0 to 30/);
    }
  });
});
