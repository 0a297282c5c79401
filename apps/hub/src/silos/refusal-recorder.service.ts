import { createHash } from 'node:crypto';
import { Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { InjectPinoLogger, PinoLogger } from 'nestjs-pino';
import { DataSource, type EntityManager } from 'typeorm';
import { AuditTrail, type AuditActor, type AuditEvent } from '../audit/audit-trail';
import { IntervalTask } from '../audit/interval-task.util';

/**
 * One audit record per refused identity and reason per interval, in ms. A revoked silo that keeps calling (or a
 * stolen key hammering the renewal route) then adds at most one record a minute to the hash chain, instead of one
 * per request, while every refusal is still counted.
 */
export const REFUSAL_RECORD_INTERVAL_MS = 60_000;
/** Distinct remote addresses kept per aggregated record (the first ones seen); the count covers every refusal. */
export const REFUSAL_MAX_ADDRESSES = 8;

export type RefusalAction = 'silo.identity.refused' | 'silo.certificate.renewal.refused';

/** A request refused on the silo listener, for the audit trail. */
export interface Refusal {
  action: RefusalAction;
  actor: AuditActor;
  /** The client certificate's SHA-256 fingerprint: the identity refusals are aggregated by (with the reason). */
  fingerprintSha256: string;
  reason: string;
  remoteAddress?: string;
  subject?: AuditEvent['subject'];
  /** A short machine-readable kind of refusal (e.g. 'pending'), kept in the record. */
  kind?: string;
}

interface RefusalRow {
  fingerprint_sha256: string;
  reason_sha256: string;
  action: RefusalAction;
  actor: AuditActor;
  subject: AuditEvent['subject'] | null;
  kind: string | null;
  reason: string;
  pending_count: number;
  pending_first_at: Date | null;
  pending_last_at: Date | null;
  pending_remote_addresses: string[];
  last_recorded_at: Date | null;
}

function reasonKey(refusal: Pick<Refusal, 'action' | 'reason'>): string {
  return createHash('sha256').update(`${refusal.action}\n${refusal.reason}`, 'utf8').digest('hex');
}

/**
 * Writes refusals to the audit trail, aggregated (issue 14 item 2): the first refusal of an identity for a reason is
 * recorded at once; repeats within REFUSAL_RECORD_INTERVAL_MS are only counted, in the `silo_identity_refusals`
 * table, and become one record with `count`, `firstAt` and `lastAt` at the next refusal after the interval, at the
 * periodic flush, or when the hub stops. The count lives in the database and is cleared in the same transaction
 * that appends its record, so a crash loses no count and none is recorded twice; counts left by a crash are recorded
 * by the next periodic flush.
 */
@Injectable()
export class RefusalRecorder implements OnModuleInit, OnModuleDestroy {
  private readonly schedule: IntervalTask;

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditTrail,
    @InjectPinoLogger('SiloRefusals') private readonly logger: PinoLogger,
  ) {
    this.schedule = new IntervalTask(
      REFUSAL_RECORD_INTERVAL_MS,
      () => this.flush(),
      (err) => this.logger.error({ err }, 'recording aggregated silo refusals failed'),
    );
  }

  onModuleInit(): void {
    this.schedule.start();
  }

  /** Before the database closes: every pending count becomes a record. */
  async onModuleDestroy(): Promise<void> {
    await this.schedule.stop();
    await this.flush({ all: true });
  }

  async record(refusal: Refusal, now = new Date()): Promise<void> {
    const key = reasonKey(refusal);
    await this.db.transaction(async (tx) => {
      await tx.query(
        `INSERT INTO "silo_identity_refusals" ("fingerprint_sha256", "reason_sha256", "action", "actor", "reason")
         VALUES ($1, $2, $3, $4::jsonb, $5) ON CONFLICT DO NOTHING`,
        [refusal.fingerprintSha256, key, refusal.action, JSON.stringify(refusal.actor), refusal.reason],
      );
      const row = await this.lockRow(tx, refusal.fingerprintSha256, key);
      if (!row) throw new Error('the refusal row vanished under its lock');
      const due =
        row.last_recorded_at === null || now.getTime() - row.last_recorded_at.getTime() >= REFUSAL_RECORD_INTERVAL_MS;
      if (due) {
        await this.append(
          tx,
          { ...row, ...this.latest(refusal) },
          { count: 1, at: now, remoteAddress: refusal.remoteAddress },
        );
        return;
      }
      await tx.query(
        `UPDATE "silo_identity_refusals"
            SET "pending_count" = "pending_count" + 1,
                "pending_first_at" = COALESCE("pending_first_at", $3),
                "pending_last_at" = $3,
                "pending_remote_addresses" = CASE
                  WHEN $4::text IS NULL OR $4::text = ANY ("pending_remote_addresses")
                    OR cardinality("pending_remote_addresses") >= $5 THEN "pending_remote_addresses"
                  ELSE array_append("pending_remote_addresses", $4::text) END,
                "actor" = $6::jsonb, "subject" = $7::jsonb, "kind" = $8
          WHERE "fingerprint_sha256" = $1 AND "reason_sha256" = $2`,
        [
          refusal.fingerprintSha256,
          key,
          now,
          refusal.remoteAddress ?? null,
          REFUSAL_MAX_ADDRESSES,
          JSON.stringify(refusal.actor),
          refusal.subject ? JSON.stringify(refusal.subject) : null,
          refusal.kind ?? null,
        ],
      );
    });
  }

  /**
   * Records the pending counts whose interval has ended (or every pending count, with `all`). Returns how many
   * records were appended.
   */
  async flush(options: { all?: boolean } = {}, now = new Date()): Promise<number> {
    const cutoff = options.all ? now : new Date(now.getTime() - REFUSAL_RECORD_INTERVAL_MS);
    const keys = (await this.db.query(
      `SELECT "fingerprint_sha256", "reason_sha256" FROM "silo_identity_refusals"
        WHERE "pending_count" > 0 AND ("last_recorded_at" IS NULL OR "last_recorded_at" <= $1)`,
      [cutoff],
    )) as Pick<RefusalRow, 'fingerprint_sha256' | 'reason_sha256'>[];
    let appended = 0;
    for (const { fingerprint_sha256, reason_sha256 } of keys) {
      appended += await this.db.transaction(async (tx) => {
        const row = await this.lockRow(tx, fingerprint_sha256, reason_sha256);
        // Another replica (or a refusal in between) may have recorded it already.
        if (!row || row.pending_count === 0) return 0;
        await this.append(tx, row, { count: 0, at: now });
        return 1;
      });
    }
    return appended;
  }

  private latest(refusal: Refusal): Pick<RefusalRow, 'actor' | 'subject' | 'kind'> {
    return { actor: refusal.actor, subject: refusal.subject ?? null, kind: refusal.kind ?? null };
  }

  private async lockRow(tx: EntityManager, fingerprint: string, key: string): Promise<RefusalRow | undefined> {
    const [row] = (await tx.query(
      `SELECT * FROM "silo_identity_refusals" WHERE "fingerprint_sha256" = $1 AND "reason_sha256" = $2 FOR UPDATE`,
      [fingerprint, key],
    )) as RefusalRow[];
    if (!row) return undefined;
    const at = (v: Date | string | null): Date | null => (v === null ? null : new Date(v));
    return {
      ...row,
      pending_count: Number(row.pending_count),
      pending_first_at: at(row.pending_first_at),
      pending_last_at: at(row.pending_last_at),
      last_recorded_at: at(row.last_recorded_at),
    };
  }

  /**
   * One audit record for the row's pending refusals plus `current` (the refusal being handled, if any), then the
   * row's pending state cleared: in one transaction, so the count is recorded exactly once.
   */
  private async append(
    tx: EntityManager,
    row: RefusalRow,
    current: { count: 0 | 1; at: Date; remoteAddress?: string },
  ): Promise<void> {
    const addresses = [...row.pending_remote_addresses];
    if (current.remoteAddress !== undefined && !addresses.includes(current.remoteAddress)) {
      if (addresses.length < REFUSAL_MAX_ADDRESSES) addresses.push(current.remoteAddress);
    }
    const count = row.pending_count + current.count;
    const firstAt = row.pending_first_at ?? current.at;
    const lastAt = current.count === 1 ? current.at : (row.pending_last_at ?? current.at);
    // Joins this transaction (AuditTrail records inside an open hub transaction on its connection).
    await this.audit.record({
      actor: row.actor,
      action: row.action,
      ...(row.subject ? { subject: row.subject } : {}),
      details: {
        fingerprintSha256: row.fingerprint_sha256,
        reason: row.reason,
        ...(row.kind ? { kind: row.kind } : {}),
        count,
        firstAt: firstAt.toISOString(),
        lastAt: lastAt.toISOString(),
        remoteAddresses: addresses,
      },
    });
    await tx.query(
      `UPDATE "silo_identity_refusals"
          SET "pending_count" = 0, "pending_first_at" = NULL, "pending_last_at" = NULL,
              "pending_remote_addresses" = '{}', "last_recorded_at" = $3
        WHERE "fingerprint_sha256" = $1 AND "reason_sha256" = $2`,
      [row.fingerprint_sha256, row.reason_sha256, current.at],
    );
  }
}
