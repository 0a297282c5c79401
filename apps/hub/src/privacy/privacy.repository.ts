import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { PrivacySpend } from '@tessera/protocol';
import { DataSource, type EntityManager } from 'typeorm';
import { SiloEntity } from '../silos/silo.entity';
import { StudyEntity } from '../study-state/study.entity';
import { PrivacyLedgerEntity } from './privacy-ledger.entity';

/**
 * A transaction another feature opened (the round engine opens a round, accepts an update), or the DataSource's
 * manager for a read outside any. The ledger never opens a transaction of its own: its charges commit, or roll back,
 * with the round they belong to. Services pass it on and never run SQL on it.
 */
export type OpenTransaction = EntityManager;

/** The task a charge is for. */
export interface ChargeKey {
  studyId: string;
  round: number;
  kind: 'train' | 'evaluate';
}

/** A charge row as inserted (the database sets its id and creation time). */
export type NewCharge = Omit<PrivacyLedgerEntity, 'id' | 'createdAt'>;

/** A silo's sums over its rows of one study's ledger. */
export interface LedgerTotals {
  siloId: string;
  chargedTraining: number;
  chargedEvaluations: number;
  chargedPersonalizations: number;
  /** The largest reported personalization count (0 for rows without a report); null only without rows. */
  reportedPersonalizations: number | null;
  /** The largest reported counts and cumulative ε; null when the silo never reported. */
  reportedTraining: number | null;
  reportedEvaluations: number | null;
  reportedEpsilon: number | null;
  /** Rows whose report disagreed with the charge. */
  disagreements: number;
}

/** A legacy study's figure for one silo: its largest cumulative ε (charged or reported) and its disagreements. */
export interface LegacyFigure {
  epsilon: number | null;
  disagreements: number;
}

/**
 * The data access of privacy/: the `privacy_ledger` table, and the reads of `silos` and `studies` a silo's privacy
 * view needs. The only code of privacy/ that runs SQL or uses TypeORM. Statements that belong to a round's
 * transaction take it as their first argument (OpenTransaction); the others run outside any.
 */
@Injectable()
export class PrivacyRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /** The manager outside any transaction, for callers that read the ledger without one. */
  manager(): OpenTransaction {
    return this.db.manager;
  }

  /** The silos charged on issue for this round and kind (by any attempt). */
  async chargedSilos(tx: OpenTransaction, key: ChargeKey): Promise<string[]> {
    const rows = await tx.getRepository(PrivacyLedgerEntity).find({
      select: { siloId: true },
      where: { studyId: key.studyId, round: key.round, kind: key.kind, chargedOn: 'issued' },
    });
    return rows.map((r) => r.siloId);
  }

  /** Inserts one charge (the unique index `privacy_ledger_charge_once` refuses a second for a round and kind). */
  async insertCharge(tx: OpenTransaction, charge: NewCharge): Promise<void> {
    await tx.getRepository(PrivacyLedgerEntity).insert(charge);
  }

  /** The silo's charge on issue for this round and kind. */
  issuedCharge(tx: OpenTransaction, key: ChargeKey, siloId: string): Promise<PrivacyLedgerEntity | null> {
    const where = {
      studyId: key.studyId,
      siloId,
      round: key.round,
      kind: key.kind,
      chargedOn: 'issued' as const,
    };
    return tx.getRepository(PrivacyLedgerEntity).findOne({ where });
  }

  /** Stores a silo's report on its charge. */
  async attachReport(
    tx: OpenTransaction,
    chargeId: string,
    report: { reported: PrivacySpend; agrees: boolean; reportedAt: Date },
  ): Promise<void> {
    await tx.getRepository(PrivacyLedgerEntity).update(chargeId, report);
  }

  /** Every silo's sums over the study's ledger (silos without rows are absent). */
  async totals(tx: OpenTransaction, studyId: string): Promise<LedgerTotals[]> {
    const rows = await tx.query<
      {
        silo_id: string;
        charged_training: number;
        charged_evaluations: number;
        charged_personalizations: number;
        reported_personalizations: number | null;
        reported_training: number | null;
        reported_evaluations: number | null;
        reported_epsilon: number | null;
        disagreements: number;
      }[]
    >(
      `SELECT silo_id,
              COALESCE(SUM(training_added), 0)::int AS charged_training,
              COALESCE(SUM(evaluation_added), 0)::int AS charged_evaluations,
              COALESCE(SUM(personalization_added), 0)::int AS charged_personalizations,
              MAX(COALESCE((reported->>'personalizations')::int, 0)) AS reported_personalizations,
              MAX((reported->>'trainingRounds')::int) AS reported_training,
              MAX((reported->>'evaluationReleases')::int) AS reported_evaluations,
              MAX((reported->>'epsilonCumulative')::float8) AS reported_epsilon,
              COUNT(*) FILTER (WHERE agrees = false)::int AS disagreements
         FROM privacy_ledger WHERE study_id = $1 GROUP BY silo_id`,
      [studyId],
    );
    return rows.map((r) => ({
      siloId: r.silo_id,
      chargedTraining: r.charged_training,
      chargedEvaluations: r.charged_evaluations,
      chargedPersonalizations: r.charged_personalizations,
      reportedPersonalizations: r.reported_personalizations,
      reportedTraining: r.reported_training,
      reportedEvaluations: r.reported_evaluations,
      reportedEpsilon: r.reported_epsilon,
      disagreements: r.disagreements,
    }));
  }

  /** The study's ledger in the order the hub shows it. */
  entries(studyId: string): Promise<PrivacyLedgerEntity[]> {
    return this.db
      .getRepository(PrivacyLedgerEntity)
      .find({ where: { studyId }, order: { createdAt: 'ASC', round: 'ASC', kind: 'DESC', siloId: 'ASC' } });
  }

  findSilo(siloId: string): Promise<SiloEntity | null> {
    return this.db.getRepository(SiloEntity).findOne({ where: { id: siloId } });
  }

  /** The studies past draft that invited the silo or charged it, oldest first. */
  studiesOfSilo(siloId: string): Promise<StudyEntity[]> {
    return this.db
      .getRepository(StudyEntity)
      .createQueryBuilder('s')
      .where(`s.status <> 'draft'`)
      .andWhere(
        `(s.plan -> 'silos' ? :siloId OR s.id IN (SELECT l.study_id FROM privacy_ledger l WHERE l.silo_id = CAST(:siloId AS uuid)))`,
        { siloId },
      )
      .orderBy('s.created_at', 'ASC')
      .getMany();
  }

  /** The largest cumulative ε charged or reported for the silo in the study, and its disagreements. */
  async legacyFigure(studyId: string, siloId: string): Promise<LegacyFigure | undefined> {
    const [row] = await this.db.query<LegacyFigure[]>(
      `SELECT MAX(GREATEST(epsilon_cumulative, COALESCE((reported->>'epsilonCumulative')::float8, 0))) AS epsilon,
              COUNT(*) FILTER (WHERE agrees = false)::int AS disagreements
         FROM privacy_ledger WHERE study_id = $1 AND silo_id = $2`,
      [studyId, siloId],
    );
    return row;
  }
}
