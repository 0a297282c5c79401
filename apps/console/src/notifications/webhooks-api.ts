import type { ApiClient } from '../api/api-client.js';

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
  'round.closed': 'A round closed',
  'round.retried': 'A round fell short and is retried',
  'round.silo_failed': 'A silo failed in a round',
  'study.completed': 'A study completed',
  'study.failed': 'A study failed',
  'privacy.budget_reached': 'A study reached its privacy budget',
};

/** The webhook routes, through the console's client (bearer token, refresh, ApiError). */
export function webhooksApi(api: ApiClient) {
  return {
    list: () => api.json<WebhookEndpoint[]>('GET', '/api/webhooks'),
    eventTypes: () => api.json<{ eventTypes: string[] }>('GET', '/api/webhooks/event-types'),
    create: (body: NewWebhook) => api.json<CreatedWebhook>('POST', '/api/webhooks', body),
    setEnabled: (id: string, enabled: boolean) =>
      api.json<WebhookEndpoint>('PATCH', `/api/webhooks/${encodeURIComponent(id)}`, { enabled }),
    remove: (id: string) => api.send('DELETE', `/api/webhooks/${encodeURIComponent(id)}`).then(() => undefined),
    sendTest: (id: string) => api.json<WebhookDelivery>('POST', `/api/webhooks/${encodeURIComponent(id)}/test`),
    deliveries: (id: string) =>
      api.json<WebhookDelivery[]>('GET', `/api/webhooks/${encodeURIComponent(id)}/deliveries?limit=50`),
  };
}
