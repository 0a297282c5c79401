import type { PrivacyMechanism } from '@tessera/dp';
import type { PrivacySpend } from '@tessera/protocol';
import { In, type DataSource, type EntityManager } from 'typeorm';
import type { AuditTrail } from '../audit/audit-trail';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { privacyReportRefusal } from '../privacy/privacy-report.util';
import type { SiloIdentity } from '../silos/silo-identity';
import { StudyEntity } from '../studies/study.entity';
import { RoundEntity } from './round.entity';

/**
 * Checks shared by the round engine's handlers of what silos send (updates, evaluation reports, failure reports).
 * Functions over an explicit DataSource / EntityManager, so acceptance and the round engine apply the same rules.
 */

/** The study as this silo may see it: NOT_FOUND when it is not invited (a silo never learns of other studies). */
export async function studyOpenTo(db: DataSource, silo: SiloIdentity, studyId: string): Promise<StudyEntity> {
  const study = await db.getRepository(StudyEntity).findOne({ where: { id: studyId } });
  if (!study || !study.plan.silos.includes(silo.siloId))
    throw new HubException(HubErrorCode.NOT_FOUND, `No study ${studyId} is open to this silo.`);
  return study;
}

/** The study and its open round numbered `roundNumber`, or the exact reason the silo cannot report to it now. */
export async function openRoundFor(
  db: DataSource,
  silo: SiloIdentity,
  studyId: string,
  roundNumber: number,
): Promise<{ study: StudyEntity; round: RoundEntity }> {
  const study = await studyOpenTo(db, silo, studyId);
  if (!study.participants.includes(silo.siloId)) {
    throw new HubException(HubErrorCode.NOT_A_PARTICIPANT, `This silo does not take part in study "${study.name}".`);
  }
  if (study.status !== 'running')
    throw new HubException(HubErrorCode.ROUND_CLOSED, `Study "${study.name}" is ${study.status}.`);
  // A round being aggregated ('closing') is named, so the refusal says why: it accepts no more reports.
  const round = await db.getRepository(RoundEntity).findOne({ where: { studyId, status: In(['open', 'closing']) } });
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

/** The round's row, locked for the rest of the transaction (every transition of a round holds this lock). */
export function lockRound(tx: EntityManager, id: string): Promise<RoundEntity> {
  return tx.getRepository(RoundEntity).findOneOrFail({ where: { id }, lock: { mode: 'pessimistic_write' } });
}

/**
 * A privacy report must be present exactly when the task spends privacy, and state at least the plan's
 * protection (privacyReportRefusal); otherwise the update or report is refused before anything is stored.
 */
export function checkPrivacyReport(
  required: boolean,
  mechanism: PrivacyMechanism | null,
  privacy: PrivacySpend | null,
  what: string,
): void {
  if (!required || !mechanism) {
    if (privacy !== null) {
      throw new HubException(
        HubErrorCode.UPDATE_MALFORMED,
        `privacy: this ${what} spends no differential privacy under the plan; send null.`,
      );
    }
    return;
  }
  if (privacy === null) {
    throw new HubException(
      HubErrorCode.UPDATE_MALFORMED,
      `privacy: an ${what} of a differentially private study must report its privacy spend.`,
    );
  }
  const refusal = privacyReportRefusal(mechanism, privacy);
  if (refusal) throw new HubException(HubErrorCode.UPDATE_MALFORMED, `The ${what} is refused: ${refusal}.`);
}

/** The audit record of a refused report (its own record: a refusal changes no state). */
export async function recordRefusal(
  audit: AuditTrail,
  silo: SiloIdentity,
  studyId: string,
  round: number,
  err: unknown,
  action: 'round.update.refused' | 'round.evaluation.refused' = 'round.update.refused',
): Promise<void> {
  if (!(err instanceof HubException)) return;
  await audit.record({
    actor: { type: 'silo', id: silo.siloId, name: silo.name },
    action,
    subject: { studyId, siloId: silo.siloId },
    details: { round, code: err.code, reason: err.message },
  });
}
