import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { SiloIdentity } from '../silos/silo-identity';
import { openRoundFor, studyOpenTo } from './open-round.util';
import { RoundEntity } from './round.entity';
import type { OpenRoundReads } from './study-state.repository';
import { StudyEntity } from './study.entity';

const silo = (siloId: string): SiloIdentity => ({
  siloId,
  name: 'Basel',
  certificateSerial: '01',
  certificateFingerprintSha256: 'f'.repeat(64),
  certificateNotAfter: new Date(Date.now() + 86_400_000),
});

/** One study invited to two silos, one of which takes part, and its live round (if any) as the reads return them. */
function world(fields: Partial<StudyEntity> = {}, round: Partial<RoundEntity> | null = {}) {
  const [member, invitee] = [randomUUID(), randomUUID()];
  const study = Object.assign(new StudyEntity(), {
    id: randomUUID(),
    name: 'Heart',
    status: 'running',
    plan: { silos: [member, invitee] },
    participants: [member],
    ...fields,
  });
  const live =
    round &&
    Object.assign(new RoundEntity(), {
      id: randomUUID(),
      studyId: study.id,
      number: 3,
      attempt: 1,
      kind: 'train',
      status: 'open',
      deadlineAt: new Date(Date.now() + 60_000),
      ...round,
    });
  const asked: string[] = [];
  const reads: OpenRoundReads = {
    findStudy: (id) => Promise.resolve(void asked.push(`study:${id}`)).then(() => (id === study.id ? study : null)),
    liveRound: (id) => Promise.resolve(void asked.push(`round:${id}`)).then(() => (id === study.id ? live : null)),
  };
  return { study, member, invitee, reads, asked };
}

async function code(work: Promise<unknown>): Promise<HubErrorCode> {
  const err = await work.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HubException);
  return (err as HubException).code;
}

describe('where a silo may report (open-round.util over its reads)', () => {
  it('finds the open round of a study the silo takes part in', async () => {
    const w = world();
    const { study, round } = await openRoundFor(w.reads, silo(w.member), w.study.id, 3);
    expect([study.id, round.number]).toEqual([w.study.id, 3]);
    expect(w.asked).toEqual([`study:${w.study.id}`, `round:${w.study.id}`]);
  });

  it('answers NOT_FOUND for a study that is missing or does not invite the silo (it never learns of others)', async () => {
    const w = world();
    expect(await code(studyOpenTo(w.reads, silo(randomUUID()), w.study.id))).toBe(HubErrorCode.NOT_FOUND);
    expect(await code(studyOpenTo(w.reads, silo(w.member), randomUUID()))).toBe(HubErrorCode.NOT_FOUND);
    expect((await studyOpenTo(w.reads, silo(w.invitee), w.study.id)).id).toBe(w.study.id);
  });

  it('refuses an invited silo that does not take part, and a study that is not running', async () => {
    const w = world();
    expect(await code(openRoundFor(w.reads, silo(w.invitee), w.study.id, 3))).toBe(HubErrorCode.NOT_A_PARTICIPANT);
    const stopped = world({ status: 'stopped' });
    expect(await code(openRoundFor(stopped.reads, silo(stopped.member), stopped.study.id, 3))).toBe(
      HubErrorCode.ROUND_CLOSED,
    );
    expect(stopped.asked).toEqual([`study:${stopped.study.id}`]);
  });

  it('names the round: none open, an earlier one closed, a later one not open yet', async () => {
    const none = world({}, null);
    expect(await code(openRoundFor(none.reads, silo(none.member), none.study.id, 3))).toBe(HubErrorCode.ROUND_CLOSED);
    const w = world();
    expect(await code(openRoundFor(w.reads, silo(w.member), w.study.id, 2))).toBe(HubErrorCode.ROUND_CLOSED);
    expect(await code(openRoundFor(w.reads, silo(w.member), w.study.id, 4))).toBe(HubErrorCode.WRONG_ROUND);
  });

  it('refuses a round being aggregated and one whose deadline passed', async () => {
    const closing = world({}, { status: 'closing' });
    expect(await code(openRoundFor(closing.reads, silo(closing.member), closing.study.id, 3))).toBe(
      HubErrorCode.ROUND_CLOSED,
    );
    const late = world({}, { deadlineAt: new Date(Date.now() - 1) });
    expect(await code(openRoundFor(late.reads, silo(late.member), late.study.id, 3))).toBe(HubErrorCode.ROUND_CLOSED);
  });
});
