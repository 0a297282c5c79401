import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { appendRecord, type AuditRecord } from '@tessera/audit';
import { InjectPinoLogger, PinoLogger } from 'nestjs-pino';
import { DataSource, type EntityManager } from 'typeorm';
import { AmbientTransactions } from './ambient-transaction.util';
import { normalizeAuditEvent, type NormalizedAuditEvent } from './audit-event.util';
import { AuditTrail, type AuditEvent } from './audit-trail';

/**
 * Any 64-bit number unique to Tessera. Every append, on every hub replica, holds this transaction-scoped advisory
 * lock from reading the head to inserting the next record, so the chain is written one record at a time.
 */
export const AUDIT_CHAIN_LOCK = 7_262_637_361_003;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function uuidOrNull(value: string | undefined): string | null {
  return value !== undefined && UUID.test(value) ? value : null;
}

/**
 * The tamper-evident audit log in PostgreSQL (docs/audit.md): every `record()` appends one hash-chained record
 * (docs/audit-format.md) in its own transaction, or in the caller's when it runs inside a hub transaction (see
 * AmbientTransactions). Records are never updated; the database refuses it.
 */
@Injectable()
export class DatabaseAuditTrail extends AuditTrail {
  private readonly ambient = new AmbientTransactions();

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @InjectPinoLogger('Audit') private readonly logger: PinoLogger,
  ) {
    super();
    // In the constructor, before any module's init or boot step can open a transaction that records something.
    this.ambient.install(db);
  }

  async record(event: AuditEvent): Promise<void> {
    await this.append(event);
  }

  /** Appends one record and returns it (seq, hash...). Refuses events that carry secrets (AuditRecordRefusedError). */
  async append(event: AuditEvent): Promise<AuditRecord> {
    const normalized = normalizeAuditEvent(event);
    return this.inTransaction((tx) => this.write(tx, normalized));
  }

  /**
   * Appends one record inside the caller's transaction, so the record and the state change it describes commit
   * together or not at all. The chain lock is then held until that transaction ends: keep it short.
   */
  async appendInTransaction(manager: EntityManager, event: AuditEvent): Promise<AuditRecord> {
    if (!manager.queryRunner?.isTransactionActive) {
      throw new Error('appendInTransaction needs the EntityManager of an open transaction');
    }
    return this.write(manager, normalizeAuditEvent(event));
  }

  /** Runs `work` in the enclosing hub transaction if there is one (single-connection pool), else in a new one. */
  inTransaction<T>(work: (tx: EntityManager) => Promise<T>): Promise<T> {
    const enclosing = this.ambient.current();
    return enclosing ? work(enclosing) : this.db.transaction(work);
  }

  private async write(tx: EntityManager, event: NormalizedAuditEvent): Promise<AuditRecord> {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [AUDIT_CHAIN_LOCK]);
    const [head] = await tx.query<{ seq: string; hash: string }[]>(
      'SELECT "seq", "hash" FROM "audit_records" ORDER BY "seq" DESC LIMIT 1',
    );
    // The time is read under the lock, so times never go backwards along the chain (on one clock).
    const record = appendRecord(head ? { seq: Number(head.seq), hash: head.hash } : null, {
      time: new Date().toISOString(),
      ...event,
    });
    await tx.query(
      `INSERT INTO "audit_records"
         ("seq", "prev_hash", "hash", "time", "time_at", "actor", "action", "subject", "details",
          "study_id", "silo_id", "actor_id")
       VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8::jsonb, $9::jsonb, $10, $11, $12)`,
      [
        record.seq,
        record.prevHash,
        record.hash,
        record.time,
        record.time,
        JSON.stringify(record.actor),
        record.action,
        JSON.stringify(record.subject),
        JSON.stringify(record.details),
        uuidOrNull(record.subject.studyId),
        uuidOrNull(record.subject.siloId),
        record.actor.id,
      ],
    );
    this.logger.debug({ seq: record.seq, action: record.action }, 'audit record appended');
    return record;
  }
}
