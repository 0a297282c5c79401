import type { RoundParticipantView, RoundView } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import { roundHistory, siloRoundCell } from './round-history.util';

const A = { id: '00000000-0000-4000-8000-00000000000a', name: 'Aare' };
const B = { id: '00000000-0000-4000-8000-00000000000b', name: 'Birs' };
const C = { id: '00000000-0000-4000-8000-00000000000c', name: 'Emme' };

function participant(
  silo: { id: string; name: string },
  over: Partial<RoundParticipantView> = {},
): RoundParticipantView {
  return {
    siloId: silo.id,
    siloName: silo.name,
    status: 'uploaded',
    numExamples: 10,
    updateSha256: null,
    evaluation: null,
    failure: null,
    ...over,
  };
}

function round(number: number, participants: RoundParticipantView[], over: Partial<RoundView> = {}): RoundView {
  return {
    number,
    attempt: 1,
    kind: 'train',
    status: 'closed',
    modelHash: 'a'.repeat(64),
    resultModelHash: 'b'.repeat(64),
    openedAt: '2026-12-06T09:00:00.000Z',
    deadlineAt: '2026-12-06T09:10:00.000Z',
    closedAt: '2026-12-06T09:05:00.000Z',
    closeReason: null,
    summary: null,
    participants,
    ...over,
  };
}

describe('round history', () => {
  it('gives every silo a cell in every attempt: trained, late, failed with its reason, then dropped', () => {
    const rounds = [
      round(1, [participant(A), participant(B), participant(C, { status: 'late' })]),
      round(2, [
        participant(A),
        participant(B),
        participant(C, { status: 'failed', failure: { code: 'DATA_UNREADABLE', message: 'locked' } }),
      ]),
      round(3, [participant(A, { status: 'waiting' }), participant(B, { status: 'waiting' })], { status: 'open' }),
    ];
    const history = roundHistory('s', [A, B], rounds);
    expect(history.silos).toEqual([A, B, C]);
    expect(history.rounds.map((r) => r.silos.map((c) => c.status))).toEqual([
      ['trained', 'trained', 'late'],
      ['trained', 'trained', 'failed'],
      ['waiting', 'waiting', 'dropped'],
    ]);
    expect(history.rounds[1]!.silos[2]!.reason).toBe('DATA_UNREADABLE: locked');
    expect(history.rounds[2]!.silos[2]!.reason).toBe('dropped after its failure in round 2');
  });

  it('marks an update screening left out as excluded, naming the flags', () => {
    const r = round(1, [participant(A), participant(B)], {
      summary: {
        reported: 2,
        participants: 2,
        totalExamples: 20,
        evaluation: {
          accuracy: { unweighted: null, weighted: null },
          loss: { unweighted: null, weighted: null },
          auc: { unweighted: null },
        },
        screening: {
          rule: {
            method: 'median-absolute-deviation',
            threshold: 3.5,
            normScaleFloor: 0,
            cosineScaleFloor: 0,
            exclude: true,
            applied: true,
          },
          summaries: [],
          updates: [
            { siloId: A.id, norm: 1, cosineToAggregate: 1, cosineToPrevious: null, flags: [], excluded: false },
            {
              siloId: B.id,
              norm: 9,
              cosineToAggregate: -1,
              cosineToPrevious: null,
              flags: [
                {
                  statistic: 'norm',
                  value: 9,
                  median: 1,
                  scale: 0.5,
                  score: 16,
                  reason: 'norm 16 scales above the median',
                },
              ],
              excluded: true,
            },
          ],
        },
      },
    });
    expect(siloRoundCell(r, A.id)).toEqual({ siloId: A.id, status: 'trained', reason: null });
    expect(siloRoundCell(r, B.id)).toMatchObject({ status: 'excluded' });
    expect(siloRoundCell(r, B.id).reason).toContain('norm');
  });

  it('calls a silo still waiting in an ended attempt dropped, with the round’s end', () => {
    const stopped = round(4, [participant(A, { status: 'waiting' })], {
      status: 'abandoned',
      closeReason: 'study stopped',
    });
    expect(siloRoundCell(stopped, A.id)).toEqual({
      siloId: A.id,
      status: 'dropped',
      reason: 'round abandoned: study stopped',
    });
    expect(siloRoundCell(stopped, B.id)).toMatchObject({ status: 'dropped', reason: 'not asked in this attempt' });
  });
});
