import type { RoundView } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import { currentRound, roundInProgress } from './round-metrics.js';

const round = (number: number, attempt: number, status: RoundView['status']) =>
  ({ number, attempt, status, kind: 'train' }) as RoundView;

describe('the round in progress', () => {
  it('counts a round being aggregated as in progress, like an open one', () => {
    expect(roundInProgress(round(1, 1, 'open'))).toBe(true);
    expect(roundInProgress(round(1, 1, 'closing'))).toBe(true);
    for (const status of ['closed', 'retried', 'failed', 'abandoned'] as const) {
      expect(roundInProgress(round(1, 1, status))).toBe(false);
    }
  });

  it('shows the closing round rather than the last closed one', () => {
    const rounds = [round(1, 1, 'closed'), round(2, 1, 'closing')];
    expect(currentRound(rounds)).toMatchObject({ number: 2, status: 'closing' });
    expect(currentRound([round(1, 1, 'closed')])).toMatchObject({ number: 1, status: 'closed' });
  });
});
