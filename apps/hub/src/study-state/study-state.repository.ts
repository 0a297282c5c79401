import { In, type EntityManager } from 'typeorm';
import { RoundEntity } from './round.entity';
import { StudyEntity } from './study.entity';

/**
 * The database as the caller holds it: its DataSource, or the EntityManager of a transaction it opened. The features
 * above (rounds/, secagg/) pass it on; study-state/ reads through it and never opens a transaction of its own.
 */
export type DatabaseHandle = Pick<EntityManager, 'getRepository'>;

/** What a silo's report is checked against (open-round.util.ts): the study, and its round still taking reports. */
export interface OpenRoundReads {
  findStudy(studyId: string): Promise<StudyEntity | null>;
  /** The study's round that is open or being aggregated ('closing'), if any. */
  liveRound(studyId: string): Promise<RoundEntity | null>;
}

/**
 * The data access of study-state/ (the `studies` and `rounds` rows a silo's report goes to): the only code of the
 * folder that runs SQL or uses TypeORM besides its entities. Not injectable: study-state/ has no module, its callers
 * hand it the database they hold (a DataSource, or their transaction's manager).
 */
export class StudyStateRepository implements OpenRoundReads {
  constructor(private readonly db: DatabaseHandle) {}

  findStudy(studyId: string): Promise<StudyEntity | null> {
    return this.db.getRepository(StudyEntity).findOne({ where: { id: studyId } });
  }

  liveRound(studyId: string): Promise<RoundEntity | null> {
    return this.db.getRepository(RoundEntity).findOne({ where: { studyId, status: In(['open', 'closing']) } });
  }
}

/** The reads behind open-round.util: the repository over a caller's database, or a double that tests hand in. */
export function openRoundReads(source: DatabaseHandle | OpenRoundReads): OpenRoundReads {
  return 'liveRound' in source ? source : new StudyStateRepository(source);
}

/** The round's row, locked for the rest of the transaction (every transition of a round holds this lock). */
export function lockRound(tx: EntityManager, id: string): Promise<RoundEntity> {
  return tx.getRepository(RoundEntity).findOneOrFail({ where: { id }, lock: { mode: 'pessimistic_write' } });
}
