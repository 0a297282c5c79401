import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import type { AuditedAction } from './webhook-events.util';

/** An audit record the feed reads, as stored (`seq` is a bigint: the driver hands it over as a string). */
export interface FeedRecord {
  seq: string;
  time: string;
  action: string;
  subject: AuditedAction['subject'];
  details: AuditedAction['details'];
}

/** An enabled endpoint and the event types it subscribed to. */
export interface Subscription {
  id: string;
  events: string[];
}

/** A delivery one claim took: `claim` identifies the claim, so a lapsed one cannot record over a newer one. */
export interface ClaimedDelivery {
  id: string;
  endpointId: string;
  eventType: string;
  body: string;
  /** Attempts made, this one included (the claim counts it). */
  attempts: number;
  url: string;
  secret: string;
  claim: string;
}

/** How one claim picks deliveries: at most `batch`, with fewer than `maxAttempts` made, held for `leaseSeconds`. */
export interface ClaimRule {
  claim: string;
  batch: number;
  maxAttempts: number;
  leaseSeconds: number;
}

/** One HTTP attempt, as the delivery log keeps it. */
export interface AttemptRecord {
  at: Date;
  statusCode: number | null;
  durationMs: number;
  error: string | null;
}

/** What becomes of a delivery after an attempt: settled, or pending again after `delaySeconds`. */
export type AttemptVerdict = { status: 'delivered' | 'failed' } | { status: 'pending'; delaySeconds: number };

/** The feed's transaction: the feed position, the audit records after it, and the deliveries they become. */
export interface FeedUnitOfWork {
  /** The feed position, locked until the transaction ends; null when another replica holds it (SKIP LOCKED). */
  lockPosition(): Promise<string | null>;
  /** Audit records after `seq`, in order, at most `limit`. */
  recordsAfter(seq: string, limit: number): Promise<FeedRecord[]>;
  enabledSubscriptions(): Promise<Subscription[]>;
  /** Queues one event for one endpoint; nothing when it is queued already (one delivery per endpoint and event). */
  queue(endpointId: string, event: { id: string; type: string; body: string }): Promise<void>;
  advanceTo(seq: string): Promise<void>;
}

/** A claimed delivery with its endpoint, as the claim's RETURNING gives it. */
interface ClaimedRow {
  id: string;
  endpoint_id: string;
  event_type: string;
  body: string;
  attempts: number;
  url: string;
  secret: string;
}

/**
 * The outbox's data access: with WebhooksRepository, the only code of notifications/ that runs SQL (`webhook_feed`,
 * `webhook_deliveries`, `webhook_attempts`, read with `webhook_endpoints` and `audit_records`). The claim's
 * FOR UPDATE SKIP LOCKED, its lease and every `now()` are here; WebhookOutbox keeps the rules (which records notify
 * whom, retries and their backoff). Its unit spec replaces this with a double (in-memory-webhooks.test-util.ts).
 */
@Injectable()
export class WebhookOutboxRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /** Whether audit records were written after the feed position (a plain read). */
  async hasNewRecords(): Promise<boolean> {
    const [row] = await this.db.query<{ found: boolean }[]>(
      `SELECT EXISTS (SELECT 1 FROM "audit_records"
                       WHERE "seq" > (SELECT "audit_seq" FROM "webhook_feed" WHERE "id" = 1)) AS "found"`,
    );
    return row?.found === true;
  }

  /** A due delivery of an enabled endpoint, or a lapsed claim (a plain read). */
  async hasDueWork(): Promise<boolean> {
    const [row] = await this.db.query<{ found: boolean }[]>(
      `SELECT EXISTS (SELECT 1 FROM "webhook_deliveries" d JOIN "webhook_endpoints" e ON e."id" = d."endpoint_id"
                       WHERE (d."status" = 'pending' AND d."next_attempt_at" <= now() AND e."enabled")
                          OR (d."status" = 'delivering' AND d."lease_until" < now() AND e."enabled")) AS "found"`,
    );
    return row?.found === true;
  }

  /** Runs `work` in one transaction on the feed; it commits when `work` resolves. */
  inFeedTransaction<T>(work: (tx: FeedUnitOfWork) => Promise<T>): Promise<T> {
    return this.db.transaction((manager) => work(feedOf(manager)));
  }

  /** Ends as failed the deliveries whose claim lapsed after their last attempt (their replica died mid-send). */
  async expireLapsed(maxAttempts: number): Promise<void> {
    await this.db.query(
      `UPDATE "webhook_deliveries" SET "status" = 'failed', "claim" = NULL, "lease_until" = NULL, "finished_at" = now()
        WHERE "status" = 'delivering' AND "lease_until" < now() AND "attempts" >= $1`,
      [maxAttempts],
    );
  }

  /**
   * Claims due deliveries of enabled endpoints (and lapsed claims), oldest due first, skipping rows another replica
   * is claiming; counts the attempt and leases each for `rule.leaseSeconds`.
   */
  async claimDue(rule: ClaimRule): Promise<ClaimedDelivery[]> {
    const rows = await this.db.query<[ClaimedRow[], number]>(
      `WITH due AS (
         SELECT d."id" FROM "webhook_deliveries" d JOIN "webhook_endpoints" e ON e."id" = d."endpoint_id"
          WHERE e."enabled" AND d."attempts" < $3
            AND ((d."status" = 'pending' AND d."next_attempt_at" <= now())
              OR (d."status" = 'delivering' AND d."lease_until" < now()))
          ORDER BY d."next_attempt_at" LIMIT $2
          FOR UPDATE OF d SKIP LOCKED)
       UPDATE "webhook_deliveries" d
          SET "status" = 'delivering', "claim" = $1, "attempts" = d."attempts" + 1,
              "lease_until" = now() + make_interval(secs => $4::float8)
         FROM due, "webhook_endpoints" e
        WHERE d."id" = due."id" AND e."id" = d."endpoint_id"
       RETURNING d."id", d."endpoint_id", d."event_type", d."body", d."attempts", e."url", e."secret"`,
      [rule.claim, rule.batch, rule.maxAttempts, rule.leaseSeconds],
    );
    // An UPDATE answers [rows, row count] through TypeORM's PostgreSQL driver.
    return rows[0].map((d) => ({
      id: d.id,
      endpointId: d.endpoint_id,
      eventType: d.event_type,
      body: d.body,
      attempts: d.attempts,
      url: d.url,
      secret: d.secret,
      claim: rule.claim,
    }));
  }

  /**
   * Logs an attempt and settles or reschedules its delivery, in one transaction. The log keeps nothing when the
   * delivery is gone (its endpoint was deleted while it was sent); the delivery changes only while `d.claim` is still
   * its claim, so a lapsed claim's late answer cannot record over a newer claim's.
   */
  async recordAttempt(d: ClaimedDelivery, attempt: AttemptRecord, verdict: AttemptVerdict): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query(
        `INSERT INTO "webhook_attempts" ("delivery_id", "endpoint_id", "attempt", "at", "status_code", "duration_ms", "error")
         SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM "webhook_deliveries" WHERE "id" = $1)`,
        [d.id, d.endpointId, d.attempts, attempt.at, attempt.statusCode, attempt.durationMs, attempt.error],
      );
      await tx.query(
        `UPDATE "webhook_deliveries"
            SET "status" = $3::varchar, "claim" = NULL, "lease_until" = NULL,
                "next_attempt_at" = CASE WHEN $3::varchar = 'pending' THEN now() + make_interval(secs => $4::float8) ELSE "next_attempt_at" END,
                "finished_at" = CASE WHEN $3::varchar = 'pending' THEN NULL ELSE now() END
          WHERE "id" = $1 AND "claim" = $2`,
        [d.id, d.claim, verdict.status, verdict.status === 'pending' ? verdict.delaySeconds : 0],
      );
    });
  }
}

function feedOf(tx: EntityManager): FeedUnitOfWork {
  return {
    lockPosition: async () => {
      const [position] = await tx.query<{ audit_seq: string }[]>(
        'SELECT "audit_seq" FROM "webhook_feed" WHERE "id" = 1 FOR UPDATE SKIP LOCKED',
      );
      return position?.audit_seq ?? null;
    },
    recordsAfter: (seq, limit) =>
      tx.query<FeedRecord[]>(
        `SELECT "seq", "time", "action", "subject", "details" FROM "audit_records"
          WHERE "seq" > $1 ORDER BY "seq" LIMIT $2`,
        [seq, limit],
      ),
    enabledSubscriptions: () =>
      tx.query<Subscription[]>('SELECT "id", "events" FROM "webhook_endpoints" WHERE "enabled"'),
    queue: async (endpointId, event) => {
      await tx.query(
        `INSERT INTO "webhook_deliveries" ("endpoint_id", "event_id", "event_type", "body", "status")
         VALUES ($1, $2, $3, $4, 'pending') ON CONFLICT ("endpoint_id", "event_id") DO NOTHING`,
        [endpointId, event.id, event.type, event.body],
      );
    },
    advanceTo: async (seq) => {
      await tx.query('UPDATE "webhook_feed" SET "audit_seq" = $1 WHERE "id" = 1', [seq]);
    },
  };
}
