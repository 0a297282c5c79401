import { describe, expect, it } from 'vitest';
import { decideClose, type CloseInput, type ParticipantFacts } from './close-decision';

const now = new Date('2026-12-06T12:00:00Z');
const before = new Date(now.getTime() - 1);
const after = new Date(now.getTime() + 60_000);

function input(over: Partial<CloseInput> & { statuses?: ParticipantFacts['status'][] } = {}): CloseInput {
  const statuses = over.statuses ?? ['uploaded', 'uploaded', 'uploaded'];
  return {
    round: { kind: 'train', number: 2, attempt: 1, deadlineAt: after },
    participants: statuses.map((status, i) => ({ siloId: `s${i}`, status })),
    activeSilos: statuses.length,
    rules: { minSilosPerRound: 2, maxRoundRetries: 1, rounds: 3 },
    now,
    ...over,
  };
}

describe('decideClose', () => {
  it('leaves a round open while someone may still report before the deadline', () => {
    expect(decideClose(input({ statuses: ['uploaded', 'waiting', 'uploaded'] }))).toEqual({ outcome: 'not-due' });
  });

  it('aggregates a training round every participant reported, and opens the next training round', () => {
    expect(decideClose(input())).toEqual({
      outcome: 'aggregate',
      reported: ['s0', 's1', 's2'],
      late: [],
      nextRound: 3,
      nextKind: 'train',
    });
  });

  it('aggregates at the deadline without the late ones, if enough reported', () => {
    const d = decideClose(
      input({ statuses: ['uploaded', 'waiting', 'uploaded'], round: { ...input().round, deadlineAt: before } }),
    );
    expect(d).toMatchObject({ outcome: 'aggregate', reported: ['s0', 's2'], late: ['s1'] });
  });

  it('follows the last training round with the final evaluation', () => {
    const d = decideClose(input({ round: { kind: 'train', number: 3, attempt: 1, deadlineAt: after } }));
    expect(d).toMatchObject({ outcome: 'aggregate', nextRound: 4, nextKind: 'evaluate' });
  });

  it('retries a round too few reported, while retries are left', () => {
    const late = { ...input().round, deadlineAt: before };
    expect(decideClose(input({ statuses: ['uploaded', 'waiting', 'failed'], round: late }))).toEqual({
      outcome: 'short',
      why: 'round 2 attempt 1: 1 of 3 silos reported before the deadline (minimum 2)',
      retryAllowed: true,
    });
    expect(
      decideClose(input({ statuses: ['uploaded', 'failed', 'failed'], round: { ...late, attempt: 2 } })),
    ).toMatchObject({ outcome: 'short', retryAllowed: false });
  });

  it('fails a training round when fewer silos remain in the study than the plan requires', () => {
    expect(decideClose(input({ statuses: ['uploaded'], activeSilos: 1 }))).toEqual({
      outcome: 'fail-too-few-silos',
      reason: 'only 1 silos remain in the study; the plan needs at least 2',
    });
  });

  it('completes the study when one evaluation of the final model is in', () => {
    const evaluate = { kind: 'evaluate' as const, number: 4, attempt: 1, deadlineAt: before };
    expect(decideClose(input({ round: evaluate, statuses: ['evaluated', 'waiting', 'failed'] }))).toEqual({
      outcome: 'complete',
    });
    // An evaluation round ignores the training minimum and the active count: one report is enough.
    expect(decideClose(input({ round: evaluate, statuses: ['evaluated'], activeSilos: 1 }))).toEqual({
      outcome: 'complete',
    });
    expect(decideClose(input({ round: evaluate, statuses: ['waiting', 'failed'] }))).toMatchObject({
      outcome: 'short',
    });
  });

  it('completes without evaluation when no silo could be asked to evaluate within its plan', () => {
    const evaluate = { kind: 'evaluate' as const, number: 4, attempt: 1, deadlineAt: after };
    expect(decideClose(input({ round: evaluate, statuses: [] }))).toEqual({
      outcome: 'complete-without-evaluation',
      reason: 'no silo could evaluate the final model within the approved privacy plan',
    });
  });

  it('never counts a failed or late participant as reported', () => {
    const d = decideClose(
      input({ statuses: ['uploaded', 'late', 'failed'], round: { ...input().round, deadlineAt: before } }),
    );
    expect(d).toMatchObject({ outcome: 'short' });
  });
});
