import type { WebhookDeliveryStatus } from './webhook-delivery.entity';

/** An endpoint as administrators see it: never its secret. */
export interface WebhookEndpointView {
  id: string;
  url: string;
  description: string;
  events: string[];
  enabled: boolean;
  createdAt: string;
  updatedAt: string;
  /** Deliveries not yet settled (pending or being sent), and those that ran out of attempts. */
  pending: number;
  failed: number;
}

/** The answer to a create: the secret appears here and nowhere else, ever. */
export interface CreatedWebhookView {
  endpoint: WebhookEndpointView;
  secret: string;
}

export interface WebhookAttemptView {
  attempt: number;
  at: string;
  statusCode: number | null;
  durationMs: number;
  error: string | null;
}

/** One event for one endpoint, with every attempt made (newest delivery first). */
export interface WebhookDeliveryView {
  id: string;
  eventId: string;
  eventType: string;
  status: WebhookDeliveryStatus;
  attempts: number;
  nextAttemptAt: string | null;
  createdAt: string;
  finishedAt: string | null;
  log: WebhookAttemptView[];
}
