import { beforeAll, describe, expect, it } from 'vitest';
import { HubErrorCode } from '../common/hub.exception';
import {
  advertiseAll,
  EARLY,
  secaggHarness,
  shareAll,
  updateOf,
  uploadAll,
  type SecAggHarness,
  KEY_GENERATION_TIMEOUT_MS,
  warmIdentityKeys,
  fourSilos,
} from './secagg-protocol.test-util';

const stored = (h: SecAggHarness, siloId: string, stage: string) =>
  h.store.committedMessages.get(`${h.roundId}/${siloId}/${stage}`);

describe('SecAggMessagesService (against in-memory secure-aggregation tables with row locks and commits)', () => {
  beforeAll(() => warmIdentityKeys(4), KEY_GENERATION_TIMEOUT_MS);

  it('refuses a message for a stage that is not the current one, and stores nothing of it', async () => {
    const h = await secaggHarness(4);
    const [a, b] = h.silos as [(typeof h.silos)[0], (typeof h.silos)[0]];
    await h.messages.advertise(h.roundId, a.id, a.advertisement(h.config), EARLY);
    // A share message while keys are still being advertised: the stage machine has not reached it.
    const early = { participantId: a.id, configHash: h.config.roundSeed, shares: [] };
    const earlyShare = h.messages.share(h.roundId, a.id, early, EARLY);
    await expect(earlyShare).rejects.toMatchObject({ code: HubErrorCode.CONFLICT });
    await expect(earlyShare).rejects.toThrow(/at stage 'advertise'; a 'share' message is not accepted now/);
    await expect(h.messages.answerUnmasking(h.roundId, b.id, {}, EARLY)).rejects.toMatchObject({
      code: HubErrorCode.CONFLICT,
    });
    expect(stored(h, a.id, 'share')).toBeUndefined();
    expect(h.records('secagg.share.received')).toEqual([]);

    // Once the stage has closed at its deadline, a first advertisement comes too late.
    const [, , c, d] = fourSilos(h);
    for (const s of [b, c]) await h.messages.advertise(h.roundId, s.id, s.advertisement(h.config), EARLY);
    const { advertiseUntil } = (await h.sessions.find(h.roundId))!;
    const late = h.messages.advertise(h.roundId, d.id, d.advertisement(h.config), advertiseUntil);
    await expect(late).rejects.toMatchObject({ code: HubErrorCode.CONFLICT });
    await expect(late).rejects.toThrow(/at stage 'share'/);
    expect(stored(h, d.id, 'advertise')).toBeUndefined();
  });

  it('answers a re-sent message with its first receipt and refuses a different second one', async () => {
    const h = await secaggHarness(4);
    const a = h.silos[0]!;
    const advertisement = a.advertisement(h.config);
    const first = await h.messages.advertise(h.roundId, a.id, advertisement, EARLY);
    const later = new Date(EARLY.getTime() + 1000);
    expect(await h.messages.advertise(h.roundId, a.id, { ...advertisement }, later)).toEqual(first);
    const other = { ...advertisement, maskPublicKey: advertisement.encryptionPublicKey };
    await expect(h.messages.advertise(h.roundId, a.id, other, later)).rejects.toMatchObject({
      code: HubErrorCode.CONFLICT,
    });
    expect(stored(h, a.id, 'advertise')?.body).toEqual(advertisement);
    expect(h.records('secagg.advertise.received')).toHaveLength(1);
  });

  it('takes one of two different messages a silo sends at once, and refuses the other', async () => {
    const h = await secaggHarness(4);
    const a = h.silos[0]!;
    const one = a.advertisement(h.config);
    const two = a.advertisement(h.config);
    const outcomes = await Promise.allSettled([
      h.messages.advertise(h.roundId, a.id, one, EARLY),
      h.messages.advertise(h.roundId, a.id, two, EARLY),
    ]);
    expect(outcomes.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected']);
    const refused = outcomes.find((o) => o.status === 'rejected');
    expect(refused?.reason).toMatchObject({ code: HubErrorCode.CONFLICT });
    expect(h.records('secagg.advertise.received')).toHaveLength(1);
    const kept = outcomes[0].status === 'fulfilled' ? one : two;
    expect(stored(h, a.id, 'advertise')?.body).toEqual(kept);
  });

  it('adds masked inputs arriving together to the running sum, none lost', async () => {
    const h = await secaggHarness(4);
    const ads = await advertiseAll(h);
    await shareAll(h, ads);
    const frames = await Promise.all(
      h.silos.map(async (s, i) => {
        const routed = await h.sessions.routedShares(h.roundId, s.id, EARLY);
        return s.maskedFrame(h.config, routed, updateOf(i));
      }),
    );
    await Promise.all(h.silos.map((s, i) => h.messages.maskedInput(h.roundId, s.id, frames[i]!, EARLY)));
    const session = await h.sessions.find(h.roundId);
    expect([...session!.contributors].sort()).toEqual(h.silos.map((s) => s.id).sort());
    expect(session!.stage).toBe('unmask');
    for (const s of h.silos) {
      const asked = await h.sessions.unmaskingRequest(h.roundId, s.id, EARLY);
      await h.messages.answerUnmasking(h.roundId, s.id, s.unmaskingResponse(asked), EARLY);
    }
    const result = await h.sessions.unmask(h.roundId);
    const expected = h.silos.map((_, i) => updateOf(i)).reduce((acc, u) => acc.map((v, j) => v + u[j]!));
    result.sum.forEach((v, j) => expect(Math.abs(v - expected[j]!)).toBeLessThanOrEqual(result.quantisationErrorBound));
    // The headers are kept, never the vectors.
    expect(Object.keys(stored(h, h.silos[0]!.id, 'upload')!.body)).not.toContain('vector');
  });

  it('sets aside a silo that sends another participant’s message, and tells it why', async () => {
    const h = await secaggHarness(4);
    const ads = await advertiseAll(h);
    const [a, b] = h.silos as [(typeof h.silos)[0], (typeof h.silos)[0]];
    const message = await a.shareMessage(ads);
    await expect(h.messages.share(h.roundId, b.id, message, EARLY)).rejects.toMatchObject({
      code: HubErrorCode.UPDATE_MALFORMED,
    });
    expect(stored(h, b.id, 'share')).toBeUndefined();
    // The exclusion and its record committed although the request was refused.
    expect((await h.sessions.find(h.roundId))?.exclusions).toMatchObject([{ participantId: b.id, stage: 'share' }]);
    expect(h.records('secagg.participant.excluded')).toMatchObject([{ subject: { siloId: b.id } }]);
  });

  it('keeps nothing of a message whose audit record cannot be written', async () => {
    const h = await secaggHarness(4);
    const a = h.silos[0]!;
    const advertisement = a.advertisement(h.config);
    h.failAuditWhen((e) => e.action === 'secagg.advertise.received');
    await expect(h.messages.advertise(h.roundId, a.id, advertisement, EARLY)).rejects.toThrow(/audit refused/);
    expect(stored(h, a.id, 'advertise')).toBeUndefined();
    h.failAuditWhen(undefined);
    await h.messages.advertise(h.roundId, a.id, advertisement, EARLY);
    expect(stored(h, a.id, 'advertise')?.body).toEqual(advertisement);
  });

  it('keeps a late unmasking answer after the session completed, though it is not needed', async () => {
    const h = await secaggHarness(4);
    const ads = await advertiseAll(h);
    await shareAll(h, ads);
    await uploadAll(h);
    const [a, b, c, d] = fourSilos(h);
    for (const s of [a, b, c]) {
      const asked = await h.sessions.unmaskingRequest(h.roundId, s.id, EARLY);
      await h.messages.answerUnmasking(h.roundId, s.id, s.unmaskingResponse(asked), EARLY);
    }
    expect((await h.sessions.find(h.roundId))?.stage).toBe('complete');
    const asked = await h.sessions.unmaskingRequest(h.roundId, d.id, EARLY);
    await h.messages.answerUnmasking(h.roundId, d.id, d.unmaskingResponse(asked), EARLY);
    expect(stored(h, d.id, 'unmask')).toBeDefined();
    expect(
      h.records('secagg.stage.closed').filter((e) => (e.details as { next: string }).next === 'complete'),
    ).toHaveLength(1);
  });

  it('completes the session once when the last unmasking answers arrive together', async () => {
    const h = await secaggHarness(4);
    const ads = await advertiseAll(h);
    await shareAll(h, ads);
    await uploadAll(h);
    const answers = await Promise.all(
      h.silos.map(async (s) => s.unmaskingResponse(await h.sessions.unmaskingRequest(h.roundId, s.id, EARLY))),
    );
    await Promise.all(h.silos.map((s, i) => h.messages.answerUnmasking(h.roundId, s.id, answers[i], EARLY)));
    expect((await h.sessions.find(h.roundId))?.stage).toBe('complete');
    const completed = h
      .records('secagg.stage.closed')
      .filter((e) => (e.details as { next: string }).next === 'complete');
    expect(completed).toHaveLength(1);
    expect(h.silos.every((s) => stored(h, s.id, 'unmask'))).toBe(true);
    const reported = h.silos.map((s) => h.store.committedParticipants.get(`${h.roundId}/${s.id}`));
    expect(reported.map((r) => [r?.status, r?.reportedAt])).toEqual(h.silos.map(() => ['uploaded', EARLY]));
  });
});
