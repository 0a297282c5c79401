import type { HubApiComponents } from '@tessera/protocol';
import type { ApiClient } from '../api/api-client.js';

/** An event an endpoint can subscribe to, as the hub's document lists them. */
type WebhookEventType = HubApiComponents['schemas']['CreateWebhookDto']['events'][number];

/** The hub's answers under /api/webhooks (apps/hub/src/notifications/webhook-views.ts). */
export interface WebhookEndpoint {
  id: string;
  url: string;
  description: string;
  events: string[];
  enabled: boolean;
  createdAt: string;
  updatedAt: string;
  pending: number;
  failed: number;
}

export interface CreatedWebhook {
  endpoint: WebhookEndpoint;
  secret: string;
}

export interface WebhookAttempt {
  attempt: number;
  at: string;
  statusCode: number | null;
  durationMs: number;
  error: string | null;
}

export interface WebhookDelivery {
  id: string;
  eventId: string;
  eventType: string;
  status: 'pending' | 'delivering' | 'delivered' | 'failed';
  attempts: number;
  nextAttemptAt: string | null;
  createdAt: string;
  finishedAt: string | null;
  log: WebhookAttempt[];
}

export interface NewWebhook {
  url: string;
  events: string[];
  description?: string;
}

/** What each event means, in the words the page shows (the hub's list is authoritative: /event-types). */
export const EVENT_LABELS: Record<string, string> = {
  'study.submitted': 'A study awaits the stewards’ approvals',
  'study.decision': 'A steward approved or rejected a plan (with the reason)',
  'study.started': 'A study started',
  'study.stopped': 'An administrator stopped a study',
  'study.paused': 'An administrator paused a study (no new round opens)',
  'study.resumed': 'An administrator resumed a paused study',
  'round.closed': 'A round closed',
  'round.retried': 'A round fell short and is retried',
  'round.silo_failed': 'A silo failed in a round',
  'study.completed': 'A study completed',
  'study.failed': 'A study failed',
  'privacy.budget_reached': 'A study reached its privacy budget',
};

/** The webhook routes, through the console's client typed by the hub's document (bearer token, refresh, ApiError). */
export function webhooksApi(api: ApiClient) {
  const byId = (id: string) => ({ params: { path: { id } } });
  return {
    list: () => api.read<WebhookEndpoint[]>(api.api.GET('/api/webhooks')),
    eventTypes: () => api.read<{ eventTypes: string[] }>(api.api.GET('/api/webhooks/event-types')),
    // The events are names the hub listed itself (/event-types); the hub checks them again.
    create: (body: NewWebhook) =>
      api.read<CreatedWebhook>(
        api.api.POST('/api/webhooks', { body: { ...body, events: body.events as WebhookEventType[] } }),
      ),
    setEnabled: (id: string, enabled: boolean) =>
      api.read<WebhookEndpoint>(api.api.PATCH('/api/webhooks/{id}', { ...byId(id), body: { enabled } })),
    remove: (id: string) => api.api.DELETE('/api/webhooks/{id}', byId(id)).then(() => undefined),
    sendTest: (id: string) => api.read<WebhookDelivery>(api.api.POST('/api/webhooks/{id}/test', byId(id))),
    deliveries: (id: string) =>
      api.read<WebhookDelivery[]>(
        api.api.GET('/api/webhooks/{id}/deliveries', { params: { path: { id }, query: { limit: 50 } } }),
      ),
  };
}
