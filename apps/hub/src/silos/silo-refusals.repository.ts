import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import type { AuditActor, AuditEvent } from '../audit/audit-trail';

export type RefusalAction = 'silo.identity.refused' | 'silo.certificate.renewal.refused';

/** The key refusals are counted under: the client certificate and the reason (its SHA-256, with the action). */
export interface RefusalKey {
  readonly fingerprintSha256: string;
  readonly reasonSha256: string;
}

/** The facts of one refusal that the row keeps (the latest refusal's actor, subject and kind replace the older). */
export interface RefusalFacts {
  action: RefusalAction;
  actor: AuditActor;
  subject: AuditEvent['subject'] | null;
  kind: string | null;
  reason: string;
}

/** A row of `silo_identity_refusals`: an identity's refusals for one reason not recorded yet, and its last record. */
export interface RefusalRow extends RefusalKey, RefusalFacts {
  pendingCount: number;
  pendingFirstAt: Date | null;
  pendingLastAt: Date | null;
  pendingRemoteAddresses: string[];
  lastRecordedAt: Date | null;
}

/** One refusal counted without a record: its time and (if known and there is room) its remote address. */
export interface PendingRefusal {
  at: Date;
  remoteAddress: string | null;
  /** At most this many distinct addresses are kept per row. */
  maxAddresses: number;
}

/** One transaction on a refusal row; the audit trail joins it on its own (AmbientTransactions). */
export interface RefusalsUnitOfWork {
  /** Creates the row if the key has none (ON CONFLICT DO NOTHING: a concurrent refusal may create it first). */
  ensureRow(key: RefusalKey, facts: Pick<RefusalFacts, 'action' | 'actor' | 'reason'>): Promise<void>;
  /** The row, locked (FOR UPDATE) until the transaction ends: refusals of one key are counted one after another. */
  lock(key: RefusalKey): Promise<RefusalRow | undefined>;
  /** Counts one refusal on the row without recording it, and keeps the latest refusal's actor, subject and kind. */
  countPending(
    key: RefusalKey,
    refusal: PendingRefusal,
    latest: Omit<RefusalFacts, 'action' | 'reason'>,
  ): Promise<void>;
  /** Clears the row's pending count after its record was appended at `recordedAt`. */
  clearPending(key: RefusalKey, recordedAt: Date): Promise<void>;
}

interface StoredRow {
  fingerprint_sha256: string;
  reason_sha256: string;
  action: RefusalAction;
  actor: AuditActor;
  subject: AuditEvent['subject'] | null;
  kind: string | null;
  reason: string;
  pending_count: number | string;
  pending_first_at: Date | string | null;
  pending_last_at: Date | string | null;
  pending_remote_addresses: string[];
  last_recorded_at: Date | string | null;
}

/**
 * The data access of RefusalRecorder: the `silo_identity_refusals` table, where refusals of a client certificate are
 * counted between their aggregated audit records (issue 14 item 2). With SilosRepository, the only code of silos/
 * that runs SQL.
 */
@Injectable()
export class SiloRefusalsRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  inTransaction<T>(work: (tx: RefusalsUnitOfWork) => Promise<T>): Promise<T> {
    return this.db.transaction((manager) => work(unitOfWork(manager)));
  }

  /** The keys with pending refusals whose last record is at or before `cutoff` (or that have none). */
  async dueKeys(cutoff: Date): Promise<RefusalKey[]> {
    const rows = await this.db.query<Pick<StoredRow, 'fingerprint_sha256' | 'reason_sha256'>[]>(
      `SELECT "fingerprint_sha256", "reason_sha256" FROM "silo_identity_refusals"
        WHERE "pending_count" > 0 AND ("last_recorded_at" IS NULL OR "last_recorded_at" <= $1)`,
      [cutoff],
    );
    return rows.map((r) => ({ fingerprintSha256: r.fingerprint_sha256, reasonSha256: r.reason_sha256 }));
  }
}

function unitOfWork(tx: EntityManager): RefusalsUnitOfWork {
  return {
    ensureRow: async (key, facts) => {
      await tx.query(
        `INSERT INTO "silo_identity_refusals" ("fingerprint_sha256", "reason_sha256", "action", "actor", "reason")
         VALUES ($1, $2, $3, $4::jsonb, $5) ON CONFLICT DO NOTHING`,
        [key.fingerprintSha256, key.reasonSha256, facts.action, JSON.stringify(facts.actor), facts.reason],
      );
    },
    lock: async (key) => {
      const [row] = await tx.query<StoredRow[]>(
        `SELECT * FROM "silo_identity_refusals" WHERE "fingerprint_sha256" = $1 AND "reason_sha256" = $2 FOR UPDATE`,
        [key.fingerprintSha256, key.reasonSha256],
      );
      return row ? fromStored(row) : undefined;
    },
    countPending: async (key, refusal, latest) => {
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
          key.fingerprintSha256,
          key.reasonSha256,
          refusal.at,
          refusal.remoteAddress,
          refusal.maxAddresses,
          JSON.stringify(latest.actor),
          latest.subject ? JSON.stringify(latest.subject) : null,
          latest.kind,
        ],
      );
    },
    clearPending: async (key, recordedAt) => {
      await tx.query(
        `UPDATE "silo_identity_refusals"
            SET "pending_count" = 0, "pending_first_at" = NULL, "pending_last_at" = NULL,
                "pending_remote_addresses" = '{}', "last_recorded_at" = $3
          WHERE "fingerprint_sha256" = $1 AND "reason_sha256" = $2`,
        [key.fingerprintSha256, key.reasonSha256, recordedAt],
      );
    },
  };
}

/** The driver returns counts as numbers or strings and times as Dates or strings depending on the database. */
function fromStored(row: StoredRow): RefusalRow {
  const at = (v: Date | string | null): Date | null => (v === null ? null : new Date(v));
  return {
    fingerprintSha256: row.fingerprint_sha256,
    reasonSha256: row.reason_sha256,
    action: row.action,
    actor: row.actor,
    subject: row.subject,
    kind: row.kind,
    reason: row.reason,
    pendingCount: Number(row.pending_count),
    pendingFirstAt: at(row.pending_first_at),
    pendingLastAt: at(row.pending_last_at),
    pendingRemoteAddresses: row.pending_remote_addresses,
    lastRecordedAt: at(row.last_recorded_at),
  };
}
