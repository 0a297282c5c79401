import type { RoundParticipantEntity } from '../study-state/round-participant.entity';

/** What the decision needs of a round attempt. */
export interface RoundFacts {
  kind: 'train' | 'evaluate';
  number: number;
  attempt: number;
  deadlineAt: Date;
}

/** What the decision needs of the plan's participation rules. */
export interface ParticipationRules {
  minSilosPerRound: number;
  maxRoundRetries: number;
  /** Training rounds in the plan (the round after the last one is the final evaluation). */
  rounds: number;
}

export type ParticipantFacts = Pick<RoundParticipantEntity, 'siloId' | 'status'>;

export interface CloseInput {
  round: RoundFacts;
  participants: readonly ParticipantFacts[];
  /** Silos still taking part in the study (withdrawn and failed-out silos are gone). */
  activeSilos: number;
  rules: ParticipationRules;
  now: Date;
}

/**
 * How a round attempt closes: the six outcomes of the round engine, decided from the round's state and the plan
 * alone. The effects (rows, blobs, ledger, audit records) belong to RoundCloser; this stays pure so every branch is
 * tested without a database.
 */
export type CloseDecision =
  /** Some participant may still report and the deadline has not passed: leave the round open. */
  | { outcome: 'not-due' }
  /** A final evaluation round nobody could be asked to do (all past their plan): the study completes without it. */
  | { outcome: 'complete-without-evaluation'; reason: string }
  /** Too few silos remain in the study to ever meet the plan's minimum: the study fails. */
  | { outcome: 'fail-too-few-silos'; reason: string }
  /**
   * Too few reported before the deadline. The effects check the privacy budget first (a retry may no longer fit):
   * then evaluate and stop; else retry while `retryAllowed`, else fail the study.
   */
  | { outcome: 'short'; why: string; retryAllowed: boolean }
  /** The final evaluation is in: the study completes. */
  | { outcome: 'complete' }
  /** A training round with enough updates: aggregate these silos' updates and open the next round. */
  | { outcome: 'aggregate'; reported: string[]; late: string[]; nextRound: number; nextKind: 'train' | 'evaluate' };

const reportedStatuses = new Set<ParticipantFacts['status']>(['uploaded', 'evaluated']);

/** Decides how (and whether) a round attempt closes. */
export function decideClose({ round, participants, activeSilos, rules, now }: CloseInput): CloseDecision {
  const waiting = participants.filter((p) => p.status === 'waiting');
  if (waiting.length > 0 && round.deadlineAt.getTime() > now.getTime()) return { outcome: 'not-due' };
  const reported = participants.filter((p) => reportedStatuses.has(p.status));
  if (round.kind === 'evaluate' && participants.length === 0) {
    return {
      outcome: 'complete-without-evaluation',
      reason: 'no silo could evaluate the final model within the approved privacy plan',
    };
  }
  if (round.kind === 'train' && activeSilos < rules.minSilosPerRound) {
    return {
      outcome: 'fail-too-few-silos',
      reason: `only ${activeSilos} silos remain in the study; the plan needs at least ${rules.minSilosPerRound}`,
    };
  }
  const needed = round.kind === 'evaluate' ? 1 : rules.minSilosPerRound;
  if (reported.length < needed) {
    return {
      outcome: 'short',
      why: `round ${round.number} attempt ${round.attempt}: ${reported.length} of ${participants.length} silos reported before the deadline (minimum ${needed})`,
      retryAllowed: round.attempt <= rules.maxRoundRetries,
    };
  }
  if (round.kind === 'evaluate') return { outcome: 'complete' };
  const nextRound = round.number + 1;
  return {
    outcome: 'aggregate',
    reported: reported.map((p) => p.siloId),
    late: waiting.map((p) => p.siloId),
    nextRound,
    nextKind: nextRound > rules.rounds ? 'evaluate' : 'train',
  };
}
