import { HubErrorCode, HubException } from '../common/hub.exception';
import type { SiloIdentity } from '../silos/silo-identity';
import type { RoundEntity } from './round.entity';
import type { StudyEntity } from './study.entity';
import { openRoundReads, type DatabaseHandle, type OpenRoundReads } from './study-state.repository';

/** Takes the round's row lock; kept here for the round engine's callers (the statement is the repository's). */
export { lockRound } from './study-state.repository';

/**
 * Where a silo's report may go: the study open to it and its open round, and the round's row lock. Shared by every
 * handler of what silos send (updates, evaluation reports, failure reports, secure-aggregation messages), so the
 * round engine, update acceptance and secure aggregation refuse the same way. Functions over the database the caller
 * holds (its DataSource or transaction, read through StudyStateRepository) or, in unit specs, a double of the reads.
 */

/** The study as this silo may see it: NOT_FOUND when it is not invited (a silo never learns of other studies). */
export async function studyOpenTo(
  db: DatabaseHandle | OpenRoundReads,
  silo: SiloIdentity,
  studyId: string,
): Promise<StudyEntity> {
  const study = await openRoundReads(db).findStudy(studyId);
  if (!study || !study.plan.silos.includes(silo.siloId))
    throw new HubException(HubErrorCode.NOT_FOUND, `No study ${studyId} is open to this silo.`);
  return study;
}

/** The study and its open round numbered `roundNumber`, or the exact reason the silo cannot report to it now. */
export async function openRoundFor(
  db: DatabaseHandle | OpenRoundReads,
  silo: SiloIdentity,
  studyId: string,
  roundNumber: number,
): Promise<{ study: StudyEntity; round: RoundEntity }> {
  const reads = openRoundReads(db);
  const study = await studyOpenTo(reads, silo, studyId);
  if (!study.participants.includes(silo.siloId)) {
    throw new HubException(HubErrorCode.NOT_A_PARTICIPANT, `This silo does not take part in study "${study.name}".`);
  }
  if (study.status !== 'running')
    throw new HubException(HubErrorCode.ROUND_CLOSED, `Study "${study.name}" is ${study.status}.`);
  // A round being aggregated ('closing') is named, so the refusal says why: it accepts no more reports.
  const round = await reads.liveRound(studyId);
  if (!round) throw new HubException(HubErrorCode.ROUND_CLOSED, `Study "${study.name}" has no open round.`);
  if (round.number !== roundNumber) {
    throw new HubException(
      roundNumber < round.number ? HubErrorCode.ROUND_CLOSED : HubErrorCode.WRONG_ROUND,
      roundNumber < round.number
        ? `Round ${roundNumber} is closed (the study is at round ${round.number}).`
        : `Round ${roundNumber} is not open (the study is at round ${round.number}).`,
    );
  }
  assertOpen(round);
  return { study, round };
}

/** Refuses a report to a round that is no longer open or whose deadline passed (by the hub's clock). */
export function assertOpen(round: RoundEntity): void {
  if (round.status !== 'open')
    throw new HubException(HubErrorCode.ROUND_CLOSED, `Round ${round.number} is ${round.status}.`);
  if (round.deadlineAt.getTime() <= Date.now()) {
    throw new HubException(
      HubErrorCode.ROUND_CLOSED,
      `Round ${round.number}'s deadline passed at ${round.deadlineAt.toISOString()}: the report is late.`,
    );
  }
}
