import { randomInt, randomUUID } from 'node:crypto';
import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { InjectPinoLogger, PinoLogger } from 'nestjs-pino';
import { IntervalTask } from '../audit/interval-task.util';
import type { HubConfig } from '../config/config.schema';
import { HUB_CONFIG } from '../config/hub-config';
import { eventFromAudit, NOTIFIED_AUDIT_ACTIONS } from './webhook-events.util';
import { MAX_WEBHOOK_ATTEMPTS, retryDelayMs, shouldRetry } from './webhook-retry.util';
import { WebhookOutboxRepository, type ClaimedDelivery } from './webhook-outbox.repository';
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
    private readonly outbox: WebhookOutboxRepository,
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
    if (await this.outbox.hasNewRecords()) while ((await this.feed()) === FEED_BATCH);
    if (!(await this.outbox.hasDueWork())) return;
    // A claim that lapsed after the last attempt (its replica died mid-send) ends the delivery as failed.
    await this.outbox.expireLapsed(MAX_WEBHOOK_ATTEMPTS);
    // Due deliveries of enabled endpoints (and lapsed claims), the attempt counted now.
    const claimed = await this.outbox.claimDue({
      claim: randomUUID(),
      batch: DELIVERY_BATCH,
      maxAttempts: MAX_WEBHOOK_ATTEMPTS,
      leaseSeconds: CLAIM_LEASE_SECONDS,
    });
    await Promise.all(claimed.map((d) => this.deliver(d)));
  }

  /** Turns audit records after the feed position into deliveries; returns how many records it read. */
  async feed(): Promise<number> {
    return this.outbox.inFeedTransaction(async (tx) => {
      const position = await tx.lockPosition();
      if (position === null) return 0; // another replica is feeding right now
      const records = await tx.recordsAfter(position, FEED_BATCH);
      if (records.length === 0) return 0;
      const relevant = records.filter((r) => NOTIFIED_AUDIT_ACTIONS.includes(r.action));
      if (relevant.length > 0) {
        const endpoints = await tx.enabledSubscriptions();
        for (const r of relevant) {
          const event = eventFromAudit({ ...r, seq: Number(r.seq) });
          if (!event) continue;
          const body = JSON.stringify(event);
          for (const endpoint of endpoints.filter((e) => e.events.includes(event.type))) {
            await tx.queue(endpoint.id, { id: event.id, type: event.type, body });
          }
        }
      }
      await tx.advanceTo(records[records.length - 1]!.seq);
      return records.length;
    });
  }

  private async deliver(d: ClaimedDelivery): Promise<void> {
    const at = new Date();
    const outcome = await sendWebhook(
      d.url,
      d.secret,
      d.body,
      { deliveryId: d.id, eventType: d.eventType, attempt: d.attempts },
      DELIVERY_TIMEOUT_MS,
      this.stopping.signal,
    );
    const delivered = outcome.error === null;
    const retry = !delivered && shouldRetry(d.attempts);
    const delayMs = retry
      ? retryDelayMs(d.attempts, this.config.webhookRetryBaseSeconds * 1000, randomInt(2 ** 30) / 2 ** 30)
      : 0;
    // Nothing is logged when an administrator deleted the endpoint (and with it the delivery) while it was sent.
    await this.outbox.recordAttempt(
      d,
      { at, statusCode: outcome.statusCode, durationMs: outcome.durationMs, error: outcome.error },
      delivered
        ? { status: 'delivered' }
        : retry
          ? { status: 'pending', delaySeconds: delayMs / 1000 }
          : { status: 'failed' },
    );
    if (!delivered) {
      this.logger.warn(
        { deliveryId: d.id, endpointId: d.endpointId, attempt: d.attempts, error: outcome.error },
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
