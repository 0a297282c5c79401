/**
 * The study events an endpoint can subscribe to, each derived from one audit action (docs/operator-guide.md,
 * "Notifications"). A payload carries ids, states, counts and the hub's own reasons only: never metrics, never
 * anything an update revealed, never a silo's own error text (its code only).
 */
export const WEBHOOK_EVENT_TYPES = [
  'study.submitted',
  'study.decision',
  'study.started',
  'study.stopped',
  'study.paused',
  'study.resumed',
  'round.closed',
  'round.retried',
  'round.silo_failed',
  'study.completed',
  'study.failed',
  'privacy.budget_reached',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** The event of the "send test event" action; never derived from the audit log, not subscribable. */
export const TEST_EVENT_TYPE = 'webhook.test';

export function isWebhookEventType(value: string): value is WebhookEventType {
  return (WEBHOOK_EVENT_TYPES as readonly string[]).includes(value);
}

/** The part of an audit record an event is derived from. */
export interface AuditedAction {
  seq: number;
  time: string;
  action: string;
  subject: { studyId?: string; siloId?: string };
  details: Record<string, unknown>;
}

/** What is signed and sent: `id` is the event's (one per audit record), shared by its deliveries to every endpoint. */
export interface WebhookEvent {
  id: string;
  type: WebhookEventType | typeof TEST_EVENT_TYPE;
  occurredAt: string;
  /** The audit record it comes from (null for a test event): an auditor can find it on the audit page. */
  auditSeq: number | null;
  data: Record<string, string | number | boolean | string[] | null>;
}

type Field = 'string' | 'number' | 'string[]';

/** Per audit action: the event type and the only detail fields copied (by name and type; anything else is dropped). */
const FROM_AUDIT: Record<string, { type: WebhookEventType; fields: Record<string, Field> }> = {
  'study.submitted': { type: 'study.submitted', fields: { planHash: 'string' } },
  'study.plan.approved': {
    type: 'study.decision',
    fields: { planVersion: 'number', planHash: 'string', reason: 'string' },
  },
  'study.plan.rejected': {
    type: 'study.decision',
    fields: { planVersion: 'number', planHash: 'string', reason: 'string' },
  },
  'study.started': { type: 'study.started', fields: { participants: 'string[]', planHash: 'string' } },
  'study.stopped': { type: 'study.stopped', fields: { reason: 'string' } },
  'study.paused': { type: 'study.paused', fields: { reason: 'string' } },
  // openedRound/attempt/kind: the round held back while paused, opened by the resume (absent when none was held).
  'study.resumed': {
    type: 'study.resumed',
    fields: { pausedSince: 'string', openedRound: 'number', attempt: 'number', kind: 'string' },
  },
  'round.closed': {
    type: 'round.closed',
    fields: {
      round: 'number',
      attempt: 'number',
      kind: 'string',
      modelHash: 'string',
      reported: 'number',
      late: 'number',
    },
  },
  'round.retried': { type: 'round.retried', fields: { round: 'number', attempt: 'number', reason: 'string' } },
  'round.silo.failed': { type: 'round.silo_failed', fields: { round: 'number', attempt: 'number', code: 'string' } },
  'study.completed': { type: 'study.completed', fields: { finalModelHash: 'string' } },
  'study.failed': { type: 'study.failed', fields: { reason: 'string', round: 'number' } },
  'privacy.budget.reached': {
    type: 'privacy.budget_reached',
    fields: { round: 'number', afterRound: 'number', reason: 'string' },
  },
};

/** The audit actions that produce events (the feeder reads only these). */
export const NOTIFIED_AUDIT_ACTIONS = Object.keys(FROM_AUDIT);

function fits(value: unknown, field: Field): boolean {
  if (field === 'string[]') return Array.isArray(value) && value.every((v) => typeof v === 'string');
  return typeof value === field && (field !== 'number' || Number.isFinite(value));
}

/** The event an audit record announces, or null when its action notifies no one. Pure: ids come from the record. */
export function eventFromAudit(record: AuditedAction): WebhookEvent | null {
  const rule = FROM_AUDIT[record.action];
  if (!rule) return null;
  const data: WebhookEvent['data'] = {};
  if (record.subject.studyId) data.studyId = record.subject.studyId;
  if (record.subject.siloId) data.siloId = record.subject.siloId;
  if (rule.type === 'study.decision') data.decision = record.action === 'study.plan.approved' ? 'approve' : 'reject';
  for (const [name, field] of Object.entries(rule.fields)) {
    const value = record.details[name];
    if (fits(value, field)) data[name] = value as string | number | string[];
  }
  return { id: `audit-${record.seq}`, type: rule.type, occurredAt: record.time, auditSeq: record.seq, data };
}
