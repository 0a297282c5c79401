import { generateKeyPair } from '@tessera/pki';
import { beforeAll, describe, expect, it } from 'vitest';
import { HubErrorCode } from '../common/hub.exception';
import {
  advertiseAll,
  EARLY,
  secaggHarness,
  shareAll,
  uploadAll,
  VECTOR_LENGTH,
  type SecAggHarness,
  KEY_GENERATION_TIMEOUT_MS,
  warmIdentityKeys,
  fourSilos,
} from './secagg-protocol.test-util';

/** Runs the protocol to the unmask stage with every silo but `dropAtUpload`, which shares and then goes silent. */
async function toUnmasking(h: SecAggHarness, dropAtUpload = h.silos[3]!) {
  const ads = await advertiseAll(h);
  await shareAll(h, ads);
  const survivors = h.silos.filter((s) => s !== dropAtUpload);
  const clippedSum = await uploadAll(h, survivors);
  const session = await h.stages.advance(h.roundId, EARLY);
  expect(session.stage).toBe('upload');
  const moved = await h.stages.advance(h.roundId, session.uploadUntil);
  return { survivors, clippedSum, moved };
}

describe('SecAggStageMachine (against in-memory secure-aggregation tables with row locks and commits)', () => {
  beforeAll(() => warmIdentityKeys(4), KEY_GENERATION_TIMEOUT_MS);

  it('closes each stage once every possible sender has sent, and unmasks the survivors around a dropout', async () => {
    const h = await secaggHarness(4);
    const dropped = h.silos[3]!;
    const { survivors, clippedSum, moved } = await toUnmasking(h, dropped);
    expect(moved.stage).toBe('unmask');
    expect(moved.unmaskingPlan?.request.dropped).toEqual([dropped.id]);

    for (const s of survivors) {
      const asked = await h.sessions.unmaskingRequest(h.roundId, s.id, EARLY);
      await h.messages.answerUnmasking(h.roundId, s.id, s.unmaskingResponse(asked), EARLY);
    }
    expect((await h.sessions.find(h.roundId))?.stage).toBe('complete');
    const result = await h.sessions.unmask(h.roundId);
    expect([...result.survivors].sort()).toEqual(survivors.map((s) => s.id).sort());
    expect(result.sum).toHaveLength(VECTOR_LENGTH);
    result.sum.forEach((v, j) =>
      expect(Math.abs(v - clippedSum[j]!)).toBeLessThanOrEqual(result.quantisationErrorBound),
    );

    // The survivors reported (their inputs are in the sum); the dropout did not.
    const status = (id: string) => h.store.committedParticipants.get(`${h.roundId}/${id}`)?.status;
    expect(survivors.map((s) => status(s.id))).toEqual(['uploaded', 'uploaded', 'uploaded']);
    expect(status(dropped.id)).toBe('waiting');

    const closed = h.records('secagg.stage.closed').map((e) => e.details as Record<string, unknown>);
    expect(closed.map((d) => `${String(d.stage)}→${String(d.next)}`)).toEqual([
      'advertise→share',
      'share→upload',
      'upload→unmask',
      'unmask→complete',
    ]);
    expect(closed[2]).toMatchObject({ dropped: [dropped.id], silent: [dropped.id] });
  });

  it('keeps a stage open before its deadline while a silo may still send', async () => {
    const h = await secaggHarness(4);
    for (const s of h.silos.slice(0, 3)) await h.messages.advertise(h.roundId, s.id, s.advertisement(h.config), EARLY);
    const session = await h.stages.advance(h.roundId, EARLY);
    expect(session.stage).toBe('advertise');
    expect(await h.sessions.advertisements(h.roundId, h.silos[0]!.id, EARLY)).toEqual({
      ready: false,
      stage: 'advertise',
      until: session.advertiseUntil.toISOString(),
    });
    expect(h.records('secagg.stage.closed')).toEqual([]);
  });

  it('closes a stage once when two hubs advance past its deadline at the same time', async () => {
    const h = await secaggHarness(4);
    for (const s of h.silos.slice(0, 3)) await h.messages.advertise(h.roundId, s.id, s.advertisement(h.config), EARLY);
    const { advertiseUntil } = (await h.sessions.find(h.roundId))!;
    const [first, second] = await Promise.all([
      h.stages.advance(h.roundId, advertiseUntil),
      h.stages.advance(h.roundId, advertiseUntil),
    ]);
    expect([first.stage, second.stage]).toEqual(['share', 'share']);
    const closed = h.records('secagg.stage.closed');
    expect(closed).toHaveLength(1);
    expect(closed[0]!.details).toMatchObject({ stage: 'advertise', silent: [h.silos[3]!.id] });
  });

  it('fails the session when too few silos advertise by the deadline, naming the silent ones', async () => {
    const h = await secaggHarness(4);
    const [a, b, c, d] = fourSilos(h);
    for (const s of [a, b]) await h.messages.advertise(h.roundId, s.id, s.advertisement(h.config), EARLY);
    const { advertiseUntil } = (await h.sessions.find(h.roundId))!;
    const failed = await h.stages.advance(h.roundId, advertiseUntil);
    expect(failed.stage).toBe('failed');
    const [record] = h.records('secagg.session.failed');
    expect(record?.details).toMatchObject({ stage: 'advertise' });
    expect((record?.details as { silent: string[] }).silent).toEqual(expect.arrayContaining([c.id, d.id]));
    expect((record?.details as { silent: string[] }).silent).toHaveLength(2);
    // Nothing is taken any more, and there is nothing to unmask.
    await expect(
      h.messages.advertise(h.roundId, c.id, c.advertisement(h.config), advertiseUntil),
    ).rejects.toMatchObject({ code: HubErrorCode.ROUND_CLOSED });
    await expect(h.sessions.advertisements(h.roundId, a.id, advertiseUntil)).rejects.toMatchObject({
      code: HubErrorCode.ROUND_CLOSED,
    });
    await expect(h.sessions.unmask(h.roundId)).rejects.toThrow(/failed, not complete/);
  });

  it('sets aside a silo whose advertisement is not signed with its enrolled key', async () => {
    const h = await secaggHarness(4);
    const forger = h.silos[3]!;
    for (const s of h.silos) {
      const advertisement = s === forger ? s.advertisement(h.config, generateKeyPair()) : s.advertisement(h.config);
      await h.messages.advertise(h.roundId, s.id, advertisement, EARLY);
    }
    const ads = await h.sessions.advertisements(h.roundId, h.silos[0]!.id, EARLY);
    if (!ads.ready) throw new Error('the advertise stage should have closed');
    expect(ads.advertisements.map((a) => a.participantId)).not.toContain(forger.id);
    const [excluded] = h.records('secagg.participant.excluded');
    expect(excluded).toMatchObject({
      subject: { roundId: h.roundId, siloId: forger.id },
      details: { stage: 'advertise' },
    });
    expect((await h.sessions.find(h.roundId))?.exclusions.map((e) => e.participantId)).toEqual([forger.id]);
  });

  it('fails the unmasking at its deadline when too few survivors answer', async () => {
    const h = await secaggHarness(4);
    const { survivors, moved } = await toUnmasking(h);
    const one = survivors[0]!;
    const asked = await h.sessions.unmaskingRequest(h.roundId, one.id, EARLY);
    await h.messages.answerUnmasking(h.roundId, one.id, one.unmaskingResponse(asked), EARLY);
    expect((await h.stages.advance(h.roundId, EARLY)).stage).toBe('unmask');
    const failed = await h.stages.advance(h.roundId, moved.unmaskUntil);
    expect(failed.stage).toBe('failed');
    expect(failed.failure).toMatch(/^INSUFFICIENT_SHARES/);
    const details = h.records('secagg.session.failed')[0]?.details as { stage: string; silent: string[] };
    expect(details.stage).toBe('unmask');
    expect([...details.silent].sort()).toEqual(
      survivors
        .slice(1)
        .map((s) => s.id)
        .sort(),
    );
    // Nobody reported: the sum cannot be unmasked.
    const status = (id: string) => h.store.committedParticipants.get(`${h.roundId}/${id}`)?.status;
    expect(h.silos.map((s) => status(s.id))).toEqual(['waiting', 'waiting', 'waiting', 'waiting']);
  });
});
