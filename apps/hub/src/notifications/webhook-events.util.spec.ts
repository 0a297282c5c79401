import { describe, expect, it } from 'vitest';
import { eventFromAudit, isWebhookEventType, NOTIFIED_AUDIT_ACTIONS, type AuditedAction } from './webhook-events.util';

const STUDY = '0b0e7c43-7f4b-4a8e-9a51-0d1f4c1b2a10';
const SILO = '5d2f6a8e-1c3b-4e7f-8a9d-2b4c6d8e0f12';

function record(
  action: string,
  details: Record<string, unknown>,
  subject: AuditedAction['subject'] = {},
): AuditedAction {
  return { seq: 41, time: '2026-12-06T21:00:00.000Z', action, subject: { studyId: STUDY, ...subject }, details };
}

describe('events from audit records', () => {
  it('names the event after the audit record and carries its ids', () => {
    expect(eventFromAudit(record('study.started', { participants: [SILO], planHash: 'ab'.repeat(32) }))).toEqual({
      id: 'audit-41',
      type: 'study.started',
      occurredAt: '2026-12-06T21:00:00.000Z',
      auditSeq: 41,
      data: { studyId: STUDY, participants: [SILO], planHash: 'ab'.repeat(32) },
    });
  });

  it('announces a pause with its reason, and a resume with the round it opened, if any', () => {
    expect(eventFromAudit(record('study.paused', { reason: 'site migration' }))).toMatchObject({
      type: 'study.paused',
      data: { studyId: STUDY, reason: 'site migration' },
    });
    const since = '2026-12-06T20:00:00.000Z';
    expect(eventFromAudit(record('study.resumed', { pausedSince: since }))?.data).toEqual({
      studyId: STUDY,
      pausedSince: since,
    });
    const opened = record('study.resumed', { pausedSince: since, openedRound: 3, attempt: 1, kind: 'train' });
    expect(eventFromAudit(opened)).toMatchObject({
      type: 'study.resumed',
      data: { studyId: STUDY, pausedSince: since, openedRound: 3, attempt: 1, kind: 'train' },
    });
    expect(isWebhookEventType('study.paused') && isWebhookEventType('study.resumed')).toBe(true);
  });

  it("gives a steward's decision with its reason", () => {
    const rejected = record(
      'study.plan.rejected',
      { planVersion: 2, planHash: 'h', reason: 'too many rounds' },
      {
        siloId: SILO,
      },
    );
    expect(eventFromAudit(rejected)?.data).toEqual({
      studyId: STUDY,
      siloId: SILO,
      decision: 'reject',
      planVersion: 2,
      planHash: 'h',
      reason: 'too many rounds',
    });
    expect(eventFromAudit(record('study.plan.approved', { planVersion: 2, planHash: 'h' }))?.data.decision).toBe(
      'approve',
    );
  });

  it('never forwards metrics, a silo’s own error text or fields of the wrong type', () => {
    const closed = eventFromAudit(
      record('round.closed', { round: 3, kind: 'evaluate', summary: { evaluation: { accuracy: 0.91 } }, late: 'x' }),
    );
    expect(closed?.data).toEqual({ studyId: STUDY, round: 3, kind: 'evaluate' });
    const completed = eventFromAudit(record('study.completed', { finalModelHash: 'm', evaluation: { loss: 0.2 } }));
    expect(completed?.data).toEqual({ studyId: STUDY, finalModelHash: 'm' });
    const siloFailed = eventFromAudit(
      record('round.silo.failed', { round: 1, attempt: 1, code: 'DATA_UNREADABLE', message: '/data/patients.csv' }),
    );
    expect(JSON.stringify(siloFailed)).not.toContain('patients');
    expect(siloFailed?.type).toBe('round.silo_failed');
  });

  it('ignores actions that notify no one', () => {
    expect(eventFromAudit(record('auth.login.succeeded', {}))).toBeNull();
    expect(eventFromAudit(record('round.update.accepted', {}))).toBeNull();
    expect(NOTIFIED_AUDIT_ACTIONS).not.toContain('round.update.accepted');
  });

  it('maps every notified action to a subscribable event type', () => {
    for (const action of NOTIFIED_AUDIT_ACTIONS) {
      const event = eventFromAudit(record(action, {}));
      expect(event && isWebhookEventType(event.type)).toBe(true);
    }
  });
});
