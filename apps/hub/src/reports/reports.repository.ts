import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, LessThanOrEqual } from 'typeorm';
import { AuditCheckpointEntity } from '../audit/audit-checkpoint.entity';
import { RoundEntity } from '../study-state/round.entity';
import type { RoundAggregationTrace } from './study-report';

/**
 * The data access of reports/: the reads a study's report makes beside the services it calls (the audit chain's
 * head, the checkpoints up to a report's head, the rounds' stored aggregation traces). The only code of reports/
 * that runs SQL or uses TypeORM.
 */
@Injectable()
export class ReportsRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /** The seq of the audit chain's head, 0 while the chain is empty. */
  async currentHeadSeq(): Promise<number> {
    // An aggregate without GROUP BY answers exactly one row, also on an empty table (head null).
    const [{ head }] = await this.db.query<[{ head: string | null }]>(
      'SELECT max("seq") AS "head" FROM "audit_records"',
    );
    return head === null ? 0 : Number(head);
  }

  /** How many checkpoints of this key the chain has up to `seq`. */
  checkpointsUpTo(seq: number, keyId: string): Promise<number> {
    return this.db.getRepository(AuditCheckpointEntity).count({ where: { seq: LessThanOrEqual(seq), keyId } });
  }

  /** The rounds' stored aggregation traces (rounds without one are left out), as the rounds table yields them. */
  async aggregationTraces(studyId: string): Promise<RoundAggregationTrace[]> {
    const rounds = await this.db
      .getRepository(RoundEntity)
      .find({ where: { studyId }, select: { number: true, attempt: true, summary: true } });
    return rounds.flatMap((r) =>
      r.summary?.aggregationTrace ? [{ round: r.number, attempt: r.attempt, trace: r.summary.aggregationTrace }] : [],
    );
  }
}
