import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { AuditTrail, type AuditActor } from '../audit/audit-trail';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { HubConfig } from '../config/config.schema';
import { HUB_CONFIG } from '../config/hub-config';
import type { WebhookEndpointEntity } from './webhook-endpoint.entity';
import { isWebhookEventType, TEST_EVENT_TYPE, type WebhookEvent } from './webhook-events.util';
import { generateWebhookSecret } from './webhook-signature.util';
import { auditableUrl, webhookUrlProblem } from './webhook-url.util';
import type { CreatedWebhookView, WebhookAttemptView, WebhookDeliveryView, WebhookEndpointView } from './webhook-views';
import { WebhooksRepository } from './webhooks.repository';

export interface WebhookEndpointInput {
  url: string;
  events: string[];
  description?: string;
  enabled?: boolean;
}

export type WebhookEndpointChange = Partial<WebhookEndpointInput>;

/** Deliveries shown per endpoint at most (newest first). */
export const MAX_LOG_DELIVERIES = 200;

/**
 * Administrators' side of notifications: endpoints (created with a secret shown once, changed, enabled or disabled,
 * deleted), each change audited in its own transaction with the change; the delivery log; a test event.
 */
@Injectable()
export class WebhooksService {
  constructor(
    private readonly webhooks: WebhooksRepository,
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
    private readonly audit: AuditTrail,
  ) {}

  async list(): Promise<WebhookEndpointView[]> {
    return this.views(await this.webhooks.endpoints());
  }

  async get(id: string): Promise<WebhookEndpointView> {
    const [view] = await this.views([found(await this.webhooks.findEndpoint(id), id)]);
    return view!;
  }

  async create(input: WebhookEndpointInput, actor: AuditActor): Promise<CreatedWebhookView> {
    const events = this.checked(input);
    const secret = generateWebhookSecret();
    const id = await this.webhooks.inTransaction(async (tx) => {
      const saved = await tx.insertEndpoint({
        url: input.url,
        events,
        description: input.description ?? '',
        enabled: input.enabled ?? true,
        secret,
      });
      await this.audit.record({
        actor,
        action: 'webhook.created',
        details: { endpointId: saved.id, url: auditableUrl(saved.url), events, enabled: saved.enabled },
      });
      return saved.id;
    });
    return { endpoint: await this.get(id), secret };
  }

  async update(id: string, change: WebhookEndpointChange, actor: AuditActor): Promise<WebhookEndpointView> {
    await this.webhooks.inTransaction(async (tx) => {
      const endpoint = found(await tx.lockEndpoint(id), id);
      const next = {
        url: change.url ?? endpoint.url,
        events: change.events ?? endpoint.events,
        description: change.description ?? endpoint.description,
        enabled: change.enabled ?? endpoint.enabled,
      };
      const events = this.checked(next);
      await tx.updateEndpoint(id, { ...next, events, updatedAt: new Date() });
      const changed = Object.keys(change).filter((k) => change[k as keyof WebhookEndpointChange] !== undefined);
      await this.audit.record({
        actor,
        action: 'webhook.updated',
        details: { endpointId: id, changed, url: auditableUrl(next.url), events, enabled: next.enabled },
      });
    });
    return this.get(id);
  }

  /** Deletes the endpoint with its undelivered events and its log (the audit log keeps that it existed). */
  async remove(id: string, actor: AuditActor): Promise<void> {
    await this.webhooks.inTransaction(async (tx) => {
      const endpoint = found(await tx.lockEndpoint(id), id);
      await tx.deleteEndpoint(id);
      await this.audit.record({
        actor,
        action: 'webhook.deleted',
        details: { endpointId: id, url: auditableUrl(endpoint.url) },
      });
    });
  }

  /** Queues a `webhook.test` event for this endpoint only; it is sent, retried and logged like any other. */
  async sendTest(id: string, actor: AuditActor): Promise<WebhookDeliveryView> {
    const deliveryId = await this.webhooks.inTransaction(async (tx) => {
      const endpoint = found(await tx.lockEndpoint(id), id);
      if (!endpoint.enabled) {
        throw new HubException(HubErrorCode.CONFLICT, 'This endpoint is disabled: enable it to send a test event.');
      }
      const event: WebhookEvent = {
        id: `test-${randomUUID()}`,
        type: TEST_EVENT_TYPE,
        occurredAt: new Date().toISOString(),
        auditSeq: null,
        data: { endpointId: id },
      };
      const queued = await tx.queueDelivery(id, { id: event.id, type: event.type, body: JSON.stringify(event) });
      await this.audit.record({
        actor,
        action: 'webhook.test.queued',
        details: { endpointId: id, deliveryId: queued },
      });
      return queued;
    });
    const [view] = await this.deliveryViews([deliveryId]);
    return view!;
  }

  /** The endpoint's deliveries, newest first, each with its attempts. */
  async deliveries(id: string, limit: number): Promise<WebhookDeliveryView[]> {
    found(await this.webhooks.findEndpoint(id), id);
    const ids = await this.webhooks.newestDeliveryIds(id, Math.min(Math.max(1, limit), MAX_LOG_DELIVERIES));
    return this.deliveryViews(ids);
  }

  private async deliveryViews(ids: string[]): Promise<WebhookDeliveryView[]> {
    if (ids.length === 0) return [];
    const { deliveries, attempts } = await this.webhooks.deliveryLog(ids);
    const byId = new Map(deliveries.map((d) => [d.id, d]));
    return ids.flatMap((id) => {
      const d = byId.get(id);
      if (!d) return [];
      const log: WebhookAttemptView[] = attempts
        .filter((a) => a.deliveryId === id)
        .map((a) => ({
          attempt: a.attempt,
          at: a.at.toISOString(),
          statusCode: a.statusCode,
          durationMs: a.durationMs,
          error: a.error,
        }));
      const settled = d.status === 'delivered' || d.status === 'failed';
      return [
        {
          id: d.id,
          eventId: d.eventId,
          eventType: d.eventType,
          status: d.status,
          attempts: d.attempts,
          nextAttemptAt: settled ? null : d.nextAttemptAt.toISOString(),
          createdAt: d.createdAt.toISOString(),
          finishedAt: d.finishedAt?.toISOString() ?? null,
          log,
        },
      ];
    });
  }

  /** The input's problems as one 400, or its events (deduplicated, in the order given). */
  private checked(input: WebhookEndpointInput): string[] {
    const problems: string[] = [];
    const urlProblem = webhookUrlProblem(input.url, this.config.webhookAllowLoopbackHttp);
    if (urlProblem) problems.push(urlProblem);
    if (input.events.length === 0) problems.push('events must name at least one event');
    for (const e of input.events) {
      if (!isWebhookEventType(e)) problems.push(`events: "${e}" is not an event this hub sends`);
    }
    if (problems.length > 0) {
      throw new HubException(HubErrorCode.VALIDATION_FAILED, problems.join('; '), problems);
    }
    return [...new Set(input.events)];
  }

  private async views(endpoints: WebhookEndpointEntity[]): Promise<WebhookEndpointView[]> {
    if (endpoints.length === 0) return [];
    const counts = await this.webhooks.deliveryCounts(endpoints.map((e) => e.id));
    return endpoints.map((e) => {
      const c = counts.get(e.id);
      return {
        id: e.id,
        url: e.url,
        description: e.description,
        events: e.events,
        enabled: e.enabled,
        createdAt: e.createdAt.toISOString(),
        updatedAt: e.updatedAt.toISOString(),
        pending: c?.pending ?? 0,
        failed: c?.failed ?? 0,
      };
    });
  }
}

/** The endpoint, or NOT_FOUND. */
function found(endpoint: WebhookEndpointEntity | null, id: string): WebhookEndpointEntity {
  if (!endpoint) throw new HubException(HubErrorCode.NOT_FOUND, `No webhook endpoint with id ${id}.`);
  return endpoint;
}
