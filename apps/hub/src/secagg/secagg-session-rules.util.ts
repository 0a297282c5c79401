import type { SecAggStageName } from '@tessera/protocol';
import { ExclusionReason, type Checked, type ParticipantExclusion, type SecAggStage } from '@tessera/secagg';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { SecAggSessionEntity } from './secagg-session.entity';
import type { SecAggStore } from './secagg.repository';

/*
 * The checks and small decisions every secure-aggregation service applies to a session: who may ask, whether it
 * failed, what a stage not yet closed answers, who went silent at a stage.
 */

export const STAGE_ORDER: readonly SecAggStageName[] = ['advertise', 'share', 'upload', 'unmask', 'complete'];

/** The round's session under its row lock (SecAggStore.lockSession); NOT_FOUND when the round runs no protocol. */
export async function lockedSession(store: SecAggStore, roundId: string): Promise<SecAggSessionEntity> {
  const session = await store.lockSession(roundId);
  if (!session) throw new HubException(HubErrorCode.NOT_FOUND, 'This round does not run secure aggregation.');
  return session;
}

export function assertParticipant(session: SecAggSessionEntity, siloId: string): void {
  if (!session.config.participants.includes(siloId)) {
    throw new HubException(HubErrorCode.FORBIDDEN, "This silo is not in the round's secure-aggregation roster.");
  }
}

export function assertNotFailed(session: SecAggSessionEntity): void {
  if (session.stage === 'failed') {
    throw new HubException(
      HubErrorCode.ROUND_CLOSED,
      `The round's secure aggregation failed: ${session.failure ?? ''}`,
    );
  }
}

/** What a read of a stage's outcome answers before that stage has closed: the stage and when it closes at the latest. */
export function notReady(session: SecAggSessionEntity): { ready: false; stage: SecAggStageName; until: string } {
  const until =
    session.stage === 'advertise'
      ? session.advertiseUntil
      : session.stage === 'share'
        ? session.shareUntil
        : session.uploadUntil;
  return { ready: false, stage: session.stage, until: until.toISOString() };
}

/** A message accepted by a stage's check: what to store and what to audit. */
export interface Accepted {
  body: Record<string, unknown>;
  details: Record<string, unknown>;
}

/** A message refused by a stage's check: the sender is set aside at this stage, for this reason. */
export interface Refused {
  refused: ParticipantExclusion;
}

/** The refusal of a checked message, always in the sender's name (whatever participant the message claims). */
export function refusal(checked: Checked<{ participantId: string }>, siloId: string, stage: SecAggStage): Refused {
  return {
    refused: checked.ok
      ? {
          participantId: siloId,
          stage,
          reason: ExclusionReason.Malformed,
          detail: `The message names ${checked.value.participantId} as its sender.`,
        }
      : { ...checked.exclusion, participantId: siloId },
  };
}

/**
 * Who was expected at a stage (roster order) and sent nothing there: the silos that dropped at it. Recorded with the
 * stage's close or the session's failure, so the audit trail names each dropout at the stage it was lost.
 */
export function silentAt(expected: readonly string[], received: readonly { siloId: string }[]): string[] {
  const sent = new Set(received.map((m) => m.siloId));
  return expected.filter((id) => !sent.has(id));
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isUuid(value: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
}
