import { randomInt, randomUUID } from 'node:crypto';
import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { InjectPinoLogger, PinoLogger } from 'nestjs-pino';
import { DataSource } from 'typeorm';
import { IntervalTask } from '../audit/interval-task.util';
import type { HubConfig } from '../config/config.schema';
import { HUB_CONFIG } from '../config/hub-config';
import { eventFromAudit, NOTIFIED_AUDIT_ACTIONS, type AuditedAction } from './webhook-events.util';
import { MAX_WEBHOOK_ATTEMPTS, retryDelayMs, shouldRetry } from './webhook-retry.util';
import { signatureHeader, WEBHOOK_HEADERS } from './webhook-signature.util';

/** How often the outbox is polled (ms): events reach receivers within about this much of their commit. */
export const OUTBOX_POLL_MS = 1000;
/** A receiver gets this long to answer, headers and all (ms). */
export const DELIVERY_TIMEOUT_MS = 10_000;
/** How long a claim holds a delivery (s): longer than a request can take, so only a dead replica's claim lapses. */
const CLAIM_LEASE_SECONDS = 60;
/** Deliveries sent per poll at most (in parallel), and audit records read per poll at most. */
const DELIVERY_BATCH = 16;
const FEED_BATCH = 500;
/** Longest error text kept in the log. */
const MAX_ERROR_LENGTH = 500;

interface ClaimedRow {
  id: string;
  endpoint_id: string;
  event_type: string;
  body: string;
  attempts: number;
  url: string;
  secret: string;
}

/** A delivery this replica claimed: `claim` identifies the claim, so a lapsed one cannot record over a newer one. */
interface ClaimedDelivery extends ClaimedRow {
  claim: string;
}

/** What one HTTP attempt came to. */
export interface AttemptOutcome {
  statusCode: number | null;
  durationMs: number;
  /** Null on success (any 2xx). */
  error: string | null;
}

/**
 * The sending side of notifications. Each poll (1) turns new audit records into deliveries, one per subscribed
 * enabled endpoint, in one transaction with the feed position (audit records commit with the state change they
 * describe, so an event is sent if and only if its change committed), then (2) claims due deliveries with
 * FOR UPDATE SKIP LOCKED and a lease, sends them outside any transaction, and records each attempt. Several replicas
 * may run this: the feed row and the claims keep each event queued once and each delivery sent by one replica.
 */
@Injectable()
export class WebhookOutbox implements OnModuleInit, OnModuleDestroy {
  private readonly schedule: IntervalTask;
  private readonly stopping = new AbortController();

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
    @InjectPinoLogger('Webhooks') private readonly logger: PinoLogger,
  ) {
    this.schedule = new IntervalTask(
      OUTBOX_POLL_MS,
      () => this.poll(),
      (err) => this.logger.error({ err }, 'webhook outbox poll failed'),
    );
  }

  onModuleInit(): void {
    this.schedule.start();
  }

  async onModuleDestroy(): Promise<void> {
    // A receiver that is slow to answer must not hold the hub's shutdown for the whole timeout.
    this.stopping.abort();
    await this.schedule.stop();
  }

  async poll(): Promise<void> {
    // Idle polls only read (plain SELECTs): on the embedded database every write ends the reuse of cached reads
    // (DataGeneration), and a poll that wrote each second would end it each second.
    if (await this.hasNewRecords()) while ((await this.feed()) === FEED_BATCH);
    if (!(await this.hasDueWork())) return;
    await this.expireLapsed();
    const claimed = await this.claim();
    await Promise.all(claimed.map((d) => this.deliver(d)));
  }

  private async hasNewRecords(): Promise<boolean> {
    const [row] = (await this.db.query(
      `SELECT EXISTS (SELECT 1 FROM "audit_records"
                       WHERE "seq" > (SELECT "audit_seq" FROM "webhook_feed" WHERE "id" = 1)) AS "found"`,
    )) as { found: boolean }[];
    return row?.found === true;
  }

  /** A due delivery of an enabled endpoint, or a lapsed claim. */
  private async hasDueWork(): Promise<boolean> {
    const [row] = (await this.db.query(
      `SELECT EXISTS (SELECT 1 FROM "webhook_deliveries" d JOIN "webhook_endpoints" e ON e."id" = d."endpoint_id"
                       WHERE (d."status" = 'pending' AND d."next_attempt_at" <= now() AND e."enabled")
                          OR (d."status" = 'delivering' AND d."lease_until" < now() AND e."enabled")) AS "found"`,
    )) as { found: boolean }[];
    return row?.found === true;
  }

  /** Turns audit records after the feed position into deliveries; returns how many records it read. */
  async feed(): Promise<number> {
    return this.db.transaction(async (tx) => {
      const [position] = (await tx.query(
        'SELECT "audit_seq" FROM "webhook_feed" WHERE "id" = 1 FOR UPDATE SKIP LOCKED',
      )) as { audit_seq: string }[];
      if (!position) return 0; // another replica is feeding right now
      const records = (await tx.query(
        `SELECT "seq", "time", "action", "subject", "details" FROM "audit_records"
          WHERE "seq" > $1 ORDER BY "seq" LIMIT $2`,
        [position.audit_seq, FEED_BATCH],
      )) as {
        seq: string;
        time: string;
        action: string;
        subject: AuditedAction['subject'];
        details: AuditedAction['details'];
      }[];
      if (records.length === 0) return 0;
      const relevant = records.filter((r) => NOTIFIED_AUDIT_ACTIONS.includes(r.action));
      if (relevant.length > 0) {
        const endpoints = (await tx.query('SELECT "id", "events" FROM "webhook_endpoints" WHERE "enabled"')) as {
          id: string;
          events: string[];
        }[];
        for (const r of relevant) {
          const event = eventFromAudit({ ...r, seq: Number(r.seq) });
          if (!event) continue;
          const body = JSON.stringify(event);
          for (const endpoint of endpoints.filter((e) => e.events.includes(event.type))) {
            await tx.query(
              `INSERT INTO "webhook_deliveries" ("endpoint_id", "event_id", "event_type", "body", "status")
               VALUES ($1, $2, $3, $4, 'pending') ON CONFLICT ("endpoint_id", "event_id") DO NOTHING`,
              [endpoint.id, event.id, event.type, body],
            );
          }
        }
      }
      await tx.query('UPDATE "webhook_feed" SET "audit_seq" = $1 WHERE "id" = 1', [records[records.length - 1]!.seq]);
      return records.length;
    });
  }

  /** A claim that lapsed after the last attempt (its replica died mid-send) ends the delivery as failed. */
  private async expireLapsed(): Promise<void> {
    await this.db.query(
      `UPDATE "webhook_deliveries" SET "status" = 'failed', "claim" = NULL, "lease_until" = NULL, "finished_at" = now()
        WHERE "status" = 'delivering' AND "lease_until" < now() AND "attempts" >= $1`,
      [MAX_WEBHOOK_ATTEMPTS],
    );
  }

  /** Claims due deliveries of enabled endpoints (and lapsed claims), counting the attempt now. */
  private async claim(): Promise<ClaimedDelivery[]> {
    const claim = randomUUID();
    const rows = (await this.db.query(
      `WITH due AS (
         SELECT d."id" FROM "webhook_deliveries" d JOIN "webhook_endpoints" e ON e."id" = d."endpoint_id"
          WHERE e."enabled" AND d."attempts" < $3
            AND ((d."status" = 'pending' AND d."next_attempt_at" <= now())
              OR (d."status" = 'delivering' AND d."lease_until" < now()))
          ORDER BY d."next_attempt_at" LIMIT $2
          FOR UPDATE OF d SKIP LOCKED)
       UPDATE "webhook_deliveries" d
          SET "status" = 'delivering', "claim" = $1, "attempts" = d."attempts" + 1,
              "lease_until" = now() + make_interval(secs => ${CLAIM_LEASE_SECONDS})
         FROM due, "webhook_endpoints" e
        WHERE d."id" = due."id" AND e."id" = d."endpoint_id"
       RETURNING d."id", d."endpoint_id", d."event_type", d."body", d."attempts", e."url", e."secret"`,
      [claim, DELIVERY_BATCH, MAX_WEBHOOK_ATTEMPTS],
    )) as [ClaimedRow[], number];
    // An UPDATE answers [rows, row count] through TypeORM's PostgreSQL driver.
    return rows[0].map((d) => ({ ...d, claim }));
  }

  private async deliver(d: ClaimedDelivery): Promise<void> {
    const at = new Date();
    const outcome = await sendWebhook(
      d.url,
      d.secret,
      d.body,
      { deliveryId: d.id, eventType: d.event_type, attempt: d.attempts },
      DELIVERY_TIMEOUT_MS,
      this.stopping.signal,
    );
    const delivered = outcome.error === null;
    const retry = !delivered && shouldRetry(d.attempts);
    const delayMs = retry
      ? retryDelayMs(d.attempts, this.config.webhookRetryBaseSeconds * 1000, randomInt(2 ** 30) / 2 ** 30)
      : 0;
    await this.db.transaction(async (tx) => {
      await tx.query(
        // Nothing to log when an administrator deleted the endpoint (and with it the delivery) while it was sent.
        `INSERT INTO "webhook_attempts" ("delivery_id", "endpoint_id", "attempt", "at", "status_code", "duration_ms", "error")
         SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM "webhook_deliveries" WHERE "id" = $1)`,
        [d.id, d.endpoint_id, d.attempts, at, outcome.statusCode, outcome.durationMs, outcome.error],
      );
      await tx.query(
        `UPDATE "webhook_deliveries"
            SET "status" = $3::varchar, "claim" = NULL, "lease_until" = NULL,
                "next_attempt_at" = CASE WHEN $3::varchar = 'pending' THEN now() + make_interval(secs => $4::float8) ELSE "next_attempt_at" END,
                "finished_at" = CASE WHEN $3::varchar = 'pending' THEN NULL ELSE now() END
          WHERE "id" = $1 AND "claim" = $2`,
        [d.id, d.claim, delivered ? 'delivered' : retry ? 'pending' : 'failed', delayMs / 1000],
      );
    });
    if (!delivered) {
      this.logger.warn(
        { deliveryId: d.id, endpointId: d.endpoint_id, attempt: d.attempts, error: outcome.error },
        retry ? 'webhook delivery failed; will retry' : 'webhook delivery failed; no attempts left',
      );
    }
  }
}

/**
 * One signed POST. Redirects are not followed (a 3xx is a failure: the receiver must give its final URL), the whole
 * exchange is cut at DELIVERY_TIMEOUT_MS, and the receiver's answer body is discarded unread.
 */
export async function sendWebhook(
  url: string,
  secret: string,
  body: string,
  meta: { deliveryId: string; eventType: string; attempt: number },
  timeoutMs = DELIVERY_TIMEOUT_MS,
  /** Aborts the request early (the hub stopping): the attempt fails and is retried like any other. */
  cancel?: AbortSignal,
): Promise<AttemptOutcome> {
  const started = performance.now();
  const timestamp = Math.floor(Date.now() / 1000);
  const elapsed = () => Math.round(performance.now() - started);
  try {
    const res = await fetch(url, {
      method: 'POST',
      redirect: 'manual',
      signal: cancel ? AbortSignal.any([AbortSignal.timeout(timeoutMs), cancel]) : AbortSignal.timeout(timeoutMs),
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Tessera-Hub-Webhooks/1',
        [WEBHOOK_HEADERS.id]: meta.deliveryId,
        [WEBHOOK_HEADERS.timestamp]: String(timestamp),
        [WEBHOOK_HEADERS.signature]: signatureHeader(secret, timestamp, body),
        [WEBHOOK_HEADERS.event]: meta.eventType,
        [WEBHOOK_HEADERS.attempt]: String(meta.attempt),
      },
      body,
    });
    await res.body?.cancel();
    const statusCode = res.status;
    if (statusCode >= 200 && statusCode < 300) return { statusCode, durationMs: elapsed(), error: null };
    const error =
      statusCode >= 300 && statusCode < 400
        ? `redirect not followed (HTTP ${statusCode}${res.headers.get('location') ? ' to another URL' : ''})`
        : `HTTP ${statusCode}`;
    return { statusCode, durationMs: elapsed(), error };
  } catch (err) {
    if (cancel?.aborted)
      return { statusCode: null, durationMs: elapsed(), error: 'the hub stopped during the request' };
    return { statusCode: null, durationMs: elapsed(), error: describeFetchError(err, timeoutMs) };
  }
}

function describeFetchError(err: unknown, timeoutMs: number): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
    return `no answer within ${timeoutMs} ms`;
  }
  // fetch reports every network failure as "fetch failed"; the cause says which (ECONNREFUSED, a TLS error, a port
  // that fetch never connects to...).
  const cause = err instanceof Error ? err.cause : undefined;
  let text = err instanceof Error ? err.message : String(err);
  if (cause instanceof Error) {
    const code = (cause as Error & { code?: unknown }).code;
    text = `${text}: ${typeof code === 'string' ? `${code} ` : ''}${cause.message}`;
  }
  return text.slice(0, MAX_ERROR_LENGTH);
}
