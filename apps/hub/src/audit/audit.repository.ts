import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { AuditRecord } from '@tessera/audit';
import { And, Between, DataSource, LessThanOrEqual, MoreThan } from 'typeorm';
import type { AuditEventFilter } from './audit-log.service';
import { AuditRecordEntity, toAuditRecord } from './audit-record.entity';

/** A record of the chain by its seq and hash (a head, a report's last record). */
export interface ChainLink {
  seq: number;
  hash: string;
}

/** A record after a report's head that may stand for a change of state. */
export interface LaterRecord {
  seq: number;
  action: string;
}

/** Which page of the filtered log: after `cursor` (a seq, in the chosen order), at most `take` records. */
export interface EventPageQuery {
  cursor?: number;
  order: 'asc' | 'desc';
  take: number;
}

/** A current name of an account or a silo, by its id (as text, as the records carry it). */
export interface NamedId {
  id: string;
  name: string;
}

/** A silo's settled part in a round: an accepted update, an evaluation or a failure report. */
export interface SettledParticipation {
  studyId: string;
  siloId: string;
  round: number;
  attempt: number;
  status: string;
  updateHash: string | null;
}

/** A privacy charge made when a task was issued. */
export interface IssuedCharge {
  studyId: string;
  siloId: string;
  round: number;
  attempt: number;
  kind: 'train' | 'evaluate';
}

export interface RoundRow {
  studyId: string;
  round: number;
  attempt: number;
  status: string;
}

export interface EndedStudy {
  studyId: string;
  status: 'completed' | 'failed' | 'stopped';
}

/** The `escape` of LIKE: the filter's text matches literally. */
function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * The data access of the audit chain: reads of `audit_records` (the head, segments, batches, the auditor's filtered
 * pages), the current names of the accounts and silos the records name, and the hub's state tables a bundle's
 * recorded state is read from (never the log). Appending a record stays DatabaseAuditTrail's (the ambient
 * transaction every feature's record joins); checkpoints and signing keys have repositories of their own. With
 * those two, the only code of audit/ that runs SQL or uses TypeORM.
 */
@Injectable()
export class AuditRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /** The seq of the chain's head, 0 while the chain is empty. */
  async headSeq(): Promise<number> {
    // An aggregate without GROUP BY answers exactly one row, also on an empty table (head null).
    const [{ head }] = await this.db.query<[{ head: string | null }]>(
      'SELECT max("seq") AS "head" FROM "audit_records"',
    );
    return head === null ? 0 : Number(head);
  }

  /** The record at `seq` (seq and hash only), null when the chain does not reach it. */
  async linkAt(seq: number): Promise<ChainLink | null> {
    const row = await this.db.getRepository(AuditRecordEntity).findOne({ where: { seq }, select: ['seq', 'hash'] });
    return row ? { seq: row.seq, hash: row.hash } : null;
  }

  async recordExists(seq: number): Promise<boolean> {
    return this.db.getRepository(AuditRecordEntity).exists({ where: { seq } });
  }

  /** The records from `fromSeq` to `toSeq` (both included), in seq order. */
  async segment(fromSeq: number, toSeq: number): Promise<AuditRecord[]> {
    const rows = await this.db.getRepository(AuditRecordEntity).find({
      where: { seq: Between(fromSeq, toSeq) },
      order: { seq: 'ASC' },
    });
    return rows.map(toAuditRecord);
  }

  /** At most `take` records after `afterSeq` and up to `upTo`, in seq order. */
  async batchAfter(afterSeq: number, upTo: number, take: number): Promise<AuditRecord[]> {
    const rows = await this.db.getRepository(AuditRecordEntity).find({
      where: { seq: And(MoreThan(afterSeq), LessThanOrEqual(upTo)) },
      order: { seq: 'ASC' },
      take,
    });
    return rows.map(toAuditRecord);
  }

  /** The seq of the study's first record at or below `upTo`, null when it has none. */
  async firstStudySeq(studyId: string, upTo: number): Promise<number | null> {
    const first = await this.db.getRepository(AuditRecordEntity).findOne({
      where: { studyId, seq: LessThanOrEqual(upTo) },
      order: { seq: 'ASC' },
    });
    return first ? first.seq : null;
  }

  /**
   * The first record after `headSeq` whose action is not one of `neutralActions`: of the study when `studyId` is
   * given, else of the whole hub.
   */
  async firstLaterRecord(
    headSeq: number,
    neutralActions: string[],
    studyId: string | undefined,
  ): Promise<LaterRecord | undefined> {
    type Later = { seq: string; action: string };
    const later =
      studyId === undefined
        ? await this.db.query<Later[]>(
            'SELECT seq, action FROM audit_records WHERE seq > $1 AND action <> ALL($2) ORDER BY seq LIMIT 1',
            [headSeq, neutralActions],
          )
        : await this.db.query<Later[]>(
            `SELECT seq, action FROM audit_records WHERE study_id = $1 AND seq > $2 AND action <> ALL($3)
        ORDER BY seq LIMIT 1`,
            [studyId, headSeq, neutralActions],
          );
    return later[0] ? { seq: Number(later[0].seq), action: later[0].action } : undefined;
  }

  /** One page of the filtered log (AuditEventFilter's rules, all combined with AND). */
  async eventPage(f: AuditEventFilter, page: EventPageQuery): Promise<AuditRecord[]> {
    const qb = this.db.getRepository(AuditRecordEntity).createQueryBuilder('r');
    if (f.from) qb.andWhere('r.time_at >= :from', { from: f.from });
    if (f.to) qb.andWhere('r.time_at < :to', { to: f.to });
    if (f.actor !== undefined) {
      // The names the page shows match too: a username (any case, as usernames are unique that way) or a silo name.
      qb.andWhere(
        `(r.actor_id = :actor OR r.actor ->> 'name' = :actor
          OR (r.actor ->> 'type' = 'user' AND r.actor_id IN (SELECT u.id::text FROM users u WHERE lower(u.username) = lower(:actor)))
          OR (r.actor ->> 'type' = 'silo' AND r.actor_id IN (SELECT s.id::text FROM silos s WHERE s.name = :actor)))`,
        { actor: f.actor },
      );
    }
    if (f.action !== undefined) qb.andWhere('r.action LIKE :action', { action: `${escapeLike(f.action)}%` });
    if (f.studyId !== undefined) qb.andWhere('r.study_id = :studyId', { studyId: f.studyId });
    if (f.siloId !== undefined) qb.andWhere('r.silo_id = :siloId', { siloId: f.siloId });
    if (f.upTo !== undefined) qb.andWhere('r.seq <= :upTo', { upTo: f.upTo });
    if (f.q !== undefined) {
      qb.andWhere('(r.action ILIKE :q OR CAST(r.details AS text) ILIKE :q)', { q: `%${escapeLike(f.q)}%` });
    }
    if (page.cursor !== undefined) {
      qb.andWhere(page.order === 'asc' ? 'r.seq > :cursor' : 'r.seq < :cursor', { cursor: page.cursor });
    }
    const rows = await qb
      .orderBy('r.seq', page.order === 'asc' ? 'ASC' : 'DESC')
      .take(page.take)
      .getMany();
    return rows.map(toAuditRecord);
  }

  /** The current usernames of these account ids (ids the hub no longer holds are absent). */
  async usernames(userIds: string[]): Promise<NamedId[]> {
    return await this.db.query<NamedId[]>(
      'SELECT id::text AS id, username AS name FROM users WHERE id::text = ANY($1)',
      [userIds],
    );
  }

  /** The current names of these silo ids (ids the hub no longer holds are absent). */
  async siloNames(siloIds: string[]): Promise<NamedId[]> {
    return await this.db.query<NamedId[]>('SELECT id::text AS id, name FROM silos WHERE id::text = ANY($1)', [siloIds]);
  }

  /**
   * Round participations that uploaded, evaluated or failed, by the round's opening then silo; of one study when
   * `studyId` is given (the other three reads below likewise).
   */
  async settledParticipations(studyId: string | undefined): Promise<SettledParticipation[]> {
    const rows = await this.db.query<
      {
        study_id: string;
        silo_id: string;
        number: number;
        attempt: number;
        status: string;
        update_hash: string | null;
      }[]
    >(
      `SELECT r.study_id, p.silo_id, r.number, r.attempt, p.status, p.update_hash
         FROM round_participants p JOIN rounds r ON r.id = p.round_id
        WHERE p.status IN ('uploaded', 'evaluated', 'failed') ${scopedTo(studyId, 'r.study_id')}
        ORDER BY r.opened_at, p.silo_id`,
      argsOf(studyId),
    );
    return rows.map((p) => ({
      studyId: p.study_id,
      siloId: p.silo_id,
      round: p.number,
      attempt: p.attempt,
      status: p.status,
      updateHash: p.update_hash,
    }));
  }

  /** Charges made when tasks were issued (rows of older hubs, charged on acceptance, are left out). */
  async issuedCharges(studyId: string | undefined): Promise<IssuedCharge[]> {
    const rows = await this.db.query<
      { study_id: string; silo_id: string; number: number; attempt: number; kind: 'train' | 'evaluate' }[]
    >(
      `SELECT r.study_id, r.silo_id, r.round AS number, r.attempt, r.kind
         FROM privacy_ledger r WHERE r.charged_on = 'issued' ${scopedTo(studyId, 'r.study_id')}
        ORDER BY r.created_at, r.silo_id`,
      argsOf(studyId),
    );
    return rows.map((c) => ({
      studyId: c.study_id,
      siloId: c.silo_id,
      round: c.number,
      attempt: c.attempt,
      kind: c.kind,
    }));
  }

  /** Every round attempt, by its opening. */
  async rounds(studyId: string | undefined): Promise<RoundRow[]> {
    const rows = await this.db.query<{ study_id: string; number: number; attempt: number; status: string }[]>(
      `SELECT r.study_id, r.number, r.attempt, r.status FROM rounds r WHERE true ${scopedTo(studyId, 'r.study_id')} ORDER BY r.opened_at`,
      argsOf(studyId),
    );
    return rows.map((r) => ({ studyId: r.study_id, round: r.number, attempt: r.attempt, status: r.status }));
  }

  /** Studies that completed, failed or were stopped. */
  async endedStudies(studyId: string | undefined): Promise<EndedStudy[]> {
    const rows = await this.db.query<{ study_id: string; status: 'completed' | 'failed' | 'stopped' }[]>(
      `SELECT r.id AS study_id, r.status FROM studies r
        WHERE r.status IN ('completed', 'failed', 'stopped') ${scopedTo(studyId, 'r.id')}`,
      argsOf(studyId),
    );
    return rows.map((s) => ({ studyId: s.study_id, status: s.status }));
  }
}

function scopedTo(studyId: string | undefined, column: string): string {
  return studyId === undefined ? '' : `AND ${column} = $1`;
}

function argsOf(studyId: string | undefined): string[] {
  return studyId === undefined ? [] : [studyId];
}
