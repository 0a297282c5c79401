import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, In, type EntityManager } from 'typeorm';
import type { SiloIdentity } from '../silos/silo-identity';
import { lockRound, openRoundFor, studyOpenTo } from '../study-state/open-round.util';
import { RoundParticipantEntity } from '../study-state/round-participant.entity';
import { RoundEntity } from '../study-state/round.entity';
import { StudyEntity } from '../study-state/study.entity';

/**
 * How long a close claim lasts unless renewed. A hub that dies while aggregating holds the round for at most the
 * lease; the same hub restarted on the embedded database (which no other hub can open) takes its own lapsed claims
 * back at once (RoundCloser).
 */
export const CLOSE_LEASE_SECONDS = 20;

/**
 * A transaction another feature opened (studies starts, pauses and stops studies), or one of the round engine's own
 * handed to the features below it (the privacy ledger, secure aggregation), which write in it. Services pass it on
 * and never run SQL on it.
 */
export type OpenTransaction = EntityManager;

/** A round attempt's end: its status and what the close recorded (claim fields cleared where the close releases it). */
export type AttemptEnd = Partial<
  Pick<
    RoundEntity,
    'status' | 'closedAt' | 'closeReason' | 'summary' | 'resultModelHash' | 'closeClaim' | 'closeClaimExpiresAt'
  >
>;

/** What the round engine changes on a study's row. */
export type StudyChanges = Partial<
  Pick<
    StudyEntity,
    | 'status'
    | 'endedAt'
    | 'endReason'
    | 'currentModelHash'
    | 'optimizerStateHash'
    | 'controlVariateHash'
    | 'pausedNextRound'
    | 'participants'
  >
>;

/** A new round attempt's row (the database sets its id). */
export type NewRound = Pick<
  RoundEntity,
  'studyId' | 'number' | 'attempt' | 'kind' | 'status' | 'modelHash' | 'openedAt' | 'deadlineAt'
>;

/** What an accepted update writes on the silo's row. */
export type UploadFields = Pick<
  RoundParticipantEntity,
  'updateHash' | 'updateBytes' | 'numExamples' | 'l2Norm' | 'trainLoss' | 'evaluation' | 'privacy' | 'reportedAt'
>;

/** What an accepted evaluation report writes on the silo's row. */
export type EvaluationFields = Pick<
  RoundParticipantEntity,
  'evaluation' | 'personalization' | 'privacy' | 'reportedAt'
>;

/** An update this silo already had accepted for a round number (any attempt), with what its receipt states. */
export interface AcceptedUpload {
  round: number;
  attempt: number;
  updateHash: string;
  reportedAt: Date;
}

/** What `savepoint` returns: the work's value, or the error it failed with (its writes then rolled back). */
export type SavepointOutcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/**
 * One transaction of the round engine. Every transition takes the round's row lock first (`lockRound`), then the
 * study's; the audit trail joins the transaction on its own (AmbientTransactions), after every row lock.
 */
export interface RoundsUnitOfWork {
  /** This transaction, for the privacy ledger and secure aggregation. */
  readonly open: OpenTransaction;
  /**
   * Runs `work` inside a SAVEPOINT: when it fails, what it wrote is rolled back to the savepoint, the transaction goes
   * on, and the error is returned (not thrown). An error of the savepoint statements themselves is thrown: the
   * transaction is then unusable and must fail as a whole.
   */
  savepoint<T>(work: () => Promise<T>): Promise<SavepointOutcome<T>>;
  /** The round's row, locked until the transaction ends (FOR UPDATE). */
  lockRound(roundId: string): Promise<RoundEntity>;
  /** The study's row, locked until the transaction ends (FOR UPDATE). */
  lockStudy(studyId: string): Promise<StudyEntity>;
  participants(roundId: string): Promise<RoundParticipantEntity[]>;
  participant(roundId: string, siloId: string): Promise<RoundParticipantEntity | null>;
  /** Claims the round for aggregation: 'closing', the claim's token, a lease of CLOSE_LEASE_SECONDS from now(). */
  claimForClose(roundId: string, token: string): Promise<void>;
  /** Takes a 'closing' round's claim over if its lease lapsed by now(); whether it did. */
  takeOverLapsedClaim(roundId: string, token: string): Promise<boolean>;
  /** Opens a claimed round again, its claim released. */
  reopen(roundId: string): Promise<void>;
  endAttempt(roundId: string, end: AttemptEnd): Promise<void>;
  /** The silos still waiting become late. */
  markLate(roundId: string, siloIds: string[]): Promise<void>;
  /** An uploaded update found unusable at close: the silo's row fails with `failure`. */
  setAside(roundId: string, siloId: string, failure: { code: string; message: string }): Promise<void>;
  /** A silo's failure report, written only while its row is still waiting. */
  recordFailure(roundId: string, siloId: string, failure: { code: string; message: string }, at: Date): Promise<void>;
  recordEvaluation(roundId: string, siloId: string, fields: EvaluationFields): Promise<void>;
  recordUpload(roundId: string, siloId: string, fields: UploadFields): Promise<void>;
  updateStudy(studyId: string, changes: StudyChanges): Promise<void>;
  /** Fails the study and the round attempt it was at (the attempt only while it is open or closing). */
  failStudy(studyId: string, roundId: string, reason: string): Promise<void>;
  insertRound(round: NewRound): Promise<RoundEntity>;
  addParticipants(roundId: string, siloIds: string[]): Promise<void>;
  /** Ends the study's open and closing rounds (the study was stopped). */
  abandonOpenRounds(studyId: string): Promise<void>;
}

/**
 * The round engine's data access: `rounds`, `round_participants` and the study fields the engine moves (the
 * study-state tables). With RoundViewsRepository, the only code of rounds/ that runs SQL or uses TypeORM. Every
 * statement, lock and transaction is the one the services ran before, in the same order; times relative to the
 * database's `now()` (the close lease) are computed here.
 */
@Injectable()
export class RoundsRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /** Runs `work` in a transaction that commits when it resolves. */
  inTransaction<T>(work: (tx: RoundsUnitOfWork) => Promise<T>): Promise<T> {
    return this.db.transaction((em) => work(new TypeOrmRoundsUnitOfWork(em)));
  }

  /** The same writes inside a transaction another feature opened. */
  within(tx: OpenTransaction): RoundsUnitOfWork {
    return new TypeOrmRoundsUnitOfWork(tx);
  }

  /** Every close claim lapses now (at boot on the embedded database, where no other hub can hold one). */
  async expireAllClaims(): Promise<void> {
    await this.db.query(`UPDATE rounds SET close_claim_expires_at = now() WHERE status = 'closing'`);
  }

  /** Open rounds past their deadline (by `now`) or with no participant waiting, and lapsed claims; oldest first. */
  async dueRounds(now: Date): Promise<string[]> {
    const rows = await this.db.query<{ id: string }[]>(
      `SELECT r.id FROM rounds r
        WHERE (r.status = 'open'
               AND (r.deadline_at <= $1
                    OR NOT EXISTS (SELECT 1 FROM round_participants p WHERE p.round_id = r.id AND p.status = 'waiting')))
           OR (r.status = 'closing' AND r.close_claim_expires_at <= now())
        ORDER BY r.opened_at`,
      [now],
    );
    return rows.map((r) => r.id);
  }

  /** Extends the claim's lease from now(); false when the round no longer carries this claim. */
  async renewClaim(roundId: string, token: string): Promise<boolean> {
    const r = await this.db
      .getRepository(RoundEntity)
      .createQueryBuilder()
      .update()
      .set({ closeClaimExpiresAt: () => `now() + interval '${CLOSE_LEASE_SECONDS} seconds'` })
      .where('id = :id AND status = :status AND close_claim = :token', { id: roundId, status: 'closing', token })
      .execute();
    return Boolean(r.affected);
  }

  round(roundId: string): Promise<RoundEntity> {
    return this.db.getRepository(RoundEntity).findOneByOrFail({ id: roundId });
  }

  study(studyId: string): Promise<StudyEntity> {
    return this.db.getRepository(StudyEntity).findOneByOrFail({ id: studyId });
  }

  participantsOf(roundId: string): Promise<RoundParticipantEntity[]> {
    return this.db.getRepository(RoundParticipantEntity).find({ where: { roundId } });
  }

  /** The study's closed attempt of round `number`, if any. */
  closedRound(studyId: string, number: number): Promise<RoundEntity | null> {
    return this.db.getRepository(RoundEntity).findOne({ where: { studyId, number, status: 'closed' } });
  }

  /** The study as this silo may see it (NOT_FOUND when it is not invited). */
  studyOpenTo(silo: SiloIdentity, studyId: string): Promise<StudyEntity> {
    return studyOpenTo(this.db, silo, studyId);
  }

  /** The study and its open round numbered `roundNumber`, or the exact reason the silo cannot report to it now. */
  openRoundFor(
    silo: SiloIdentity,
    studyId: string,
    roundNumber: number,
  ): Promise<{ study: StudyEntity; round: RoundEntity }> {
    return openRoundFor(this.db, silo, studyId, roundNumber);
  }

  /** The silo's accepted updates for this round number, every attempt, oldest first. */
  async acceptedUploads(siloId: string, studyId: string, roundNumber: number): Promise<AcceptedUpload[]> {
    const rows = await this.db.query<
      { number: number; attempt: number; update_hash: string; reported_at: Date | string | null }[]
    >(
      `SELECT r.number, r.attempt, p.update_hash, p.reported_at
         FROM round_participants p JOIN rounds r ON r.id = p.round_id
        WHERE r.study_id = $1 AND r.number = $2 AND p.silo_id = $3
          AND p.status = 'uploaded' AND p.update_hash IS NOT NULL
        ORDER BY r.attempt`,
      [studyId, roundNumber, siloId],
    );
    return rows.map((r) => ({
      round: r.number,
      attempt: r.attempt,
      updateHash: r.update_hash.trim(),
      reportedAt: r.reported_at === null ? new Date(0) : new Date(r.reported_at),
    }));
  }
}

class TypeOrmRoundsUnitOfWork implements RoundsUnitOfWork {
  constructor(readonly open: EntityManager) {}

  async savepoint<T>(work: () => Promise<T>): Promise<SavepointOutcome<T>> {
    // Not nested: one name suffices (ROLLBACK TO and RELEASE name the latest savepoint of that name).
    await this.open.query('SAVEPOINT round_work');
    let value: T;
    try {
      value = await work();
    } catch (error) {
      await this.open.query('ROLLBACK TO SAVEPOINT round_work');
      await this.open.query('RELEASE SAVEPOINT round_work');
      return { ok: false, error };
    }
    await this.open.query('RELEASE SAVEPOINT round_work');
    return { ok: true, value };
  }

  lockRound(roundId: string): Promise<RoundEntity> {
    return lockRound(this.open, roundId);
  }

  lockStudy(studyId: string): Promise<StudyEntity> {
    return this.open
      .getRepository(StudyEntity)
      .findOneOrFail({ where: { id: studyId }, lock: { mode: 'pessimistic_write' } });
  }

  participants(roundId: string): Promise<RoundParticipantEntity[]> {
    return this.open.getRepository(RoundParticipantEntity).find({ where: { roundId } });
  }

  participant(roundId: string, siloId: string): Promise<RoundParticipantEntity | null> {
    return this.open.getRepository(RoundParticipantEntity).findOne({ where: { roundId, siloId } });
  }

  async claimForClose(roundId: string, token: string): Promise<void> {
    await this.open
      .getRepository(RoundEntity)
      .createQueryBuilder()
      .update()
      .set({
        status: 'closing',
        closeClaim: token,
        closeClaimExpiresAt: () => `now() + interval '${CLOSE_LEASE_SECONDS} seconds'`,
      })
      .where({ id: roundId })
      .execute();
  }

  async takeOverLapsedClaim(roundId: string, token: string): Promise<boolean> {
    const taken = await this.open
      .getRepository(RoundEntity)
      .createQueryBuilder()
      .update()
      .set({ closeClaim: token, closeClaimExpiresAt: () => `now() + interval '${CLOSE_LEASE_SECONDS} seconds'` })
      .where('id = :id AND status = :status AND close_claim_expires_at <= now()', { id: roundId, status: 'closing' })
      .execute();
    return Boolean(taken.affected);
  }

  async reopen(roundId: string): Promise<void> {
    await this.open
      .getRepository(RoundEntity)
      .update(roundId, { status: 'open', closeClaim: null, closeClaimExpiresAt: null });
  }

  async endAttempt(roundId: string, end: AttemptEnd): Promise<void> {
    await this.open.getRepository(RoundEntity).update(roundId, end);
  }

  async markLate(roundId: string, siloIds: string[]): Promise<void> {
    await this.open
      .getRepository(RoundParticipantEntity)
      .update({ roundId, siloId: In(siloIds), status: 'waiting' }, { status: 'late' });
  }

  async setAside(roundId: string, siloId: string, failure: { code: string; message: string }): Promise<void> {
    await this.open
      .getRepository(RoundParticipantEntity)
      .update({ roundId, siloId }, { status: 'failed', failure: failure as RoundParticipantEntity['failure'] });
  }

  async recordFailure(
    roundId: string,
    siloId: string,
    failure: { code: string; message: string },
    at: Date,
  ): Promise<void> {
    await this.open
      .getRepository(RoundParticipantEntity)
      .update(
        { roundId, siloId, status: 'waiting' },
        { status: 'failed', failure: failure as RoundParticipantEntity['failure'], reportedAt: at },
      );
  }

  async recordEvaluation(roundId: string, siloId: string, fields: EvaluationFields): Promise<void> {
    await this.open
      .getRepository(RoundParticipantEntity)
      .update({ roundId, siloId }, { status: 'evaluated', ...fields });
  }

  async recordUpload(roundId: string, siloId: string, fields: UploadFields): Promise<void> {
    await this.open
      .getRepository(RoundParticipantEntity)
      .update({ roundId, siloId }, { status: 'uploaded', ...fields });
  }

  async updateStudy(studyId: string, changes: StudyChanges): Promise<void> {
    await this.open.getRepository(StudyEntity).update(studyId, changes);
  }

  async failStudy(studyId: string, roundId: string, reason: string): Promise<void> {
    await this.open
      .getRepository(RoundEntity)
      .update(
        { id: roundId, status: In(['open', 'closing']) },
        { status: 'failed', closedAt: new Date(), closeReason: reason, closeClaim: null, closeClaimExpiresAt: null },
      );
    await this.open
      .getRepository(StudyEntity)
      .update(studyId, { status: 'failed', endReason: reason, endedAt: new Date() });
  }

  insertRound(round: NewRound): Promise<RoundEntity> {
    const rounds = this.open.getRepository(RoundEntity);
    return rounds.save(rounds.create(round));
  }

  async addParticipants(roundId: string, siloIds: string[]): Promise<void> {
    await this.open
      .getRepository(RoundParticipantEntity)
      .insert(siloIds.map((siloId) => ({ roundId, siloId, status: 'waiting' as const })));
  }

  async abandonOpenRounds(studyId: string): Promise<void> {
    await this.open.getRepository(RoundEntity).update(
      { studyId, status: In(['open', 'closing']) },
      {
        status: 'abandoned',
        closedAt: new Date(),
        closeReason: 'study stopped',
        closeClaim: null,
        closeClaimExpiresAt: null,
      },
    );
  }
}
