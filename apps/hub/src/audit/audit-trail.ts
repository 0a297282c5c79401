/** Who did something, as the audit trail names them. */
export interface AuditActor {
  type: 'user' | 'silo' | 'system';
  id: string;
  name?: string;
}

/** One security- or study-relevant action. Never patient data; never a secret. */
export interface AuditEvent {
  actor: AuditActor;
  action: string;
  subject?: { studyId?: string; siloId?: string; roundId?: string; userId?: string; certificateSerial?: string };
  details?: Record<string, unknown>;
}

/** Port through which every module records what it did; the tamper-evident log backs it. */
export abstract class AuditTrail {
  abstract record(event: AuditEvent): Promise<void>;
}

export const SYSTEM_ACTOR: AuditActor = { type: 'system', id: 'hub' };
