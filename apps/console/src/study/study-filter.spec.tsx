import { describe, expect, it } from 'vitest';
import { archivedQueryOf, filterStudies, progressLabel, resultOf } from './study-filter.js';
import { LIST_SILOS, listedStudy } from './study-list.test-util.js';

const STUDIES = [
  listedStudy(1, { name: 'Heart disease 2027', planHash: 'ab12cd34'.padEnd(64, '0') }),
  listedStudy(2, { name: 'Sepsis early warning', status: 'draft' }, [LIST_SILOS[2]!]),
  listedStudy(3, { name: 'Heart failure readmission', paused: { since: '2026-12-02T00:00:00.000Z', reason: 'x' } }),
  listedStudy(4, { name: 'Stroke', status: 'completed' }),
  listedStudy(5, { name: 'Old heart study', status: 'stopped', archivedAt: '2026-12-03T00:00:00.000Z' }),
];
const names = (query: string, status: Parameters<typeof filterStudies>[2] = 'everything') =>
  filterStudies(STUDIES, query, status).map((s) => s.name);

describe('filterStudies', () => {
  it('matches every word, in any order, in the name, id or an invited silo’s name, ignoring case and accents', () => {
    expect(names('heart')).toEqual(['Heart disease 2027', 'Heart failure readmission', 'Old heart study']);
    expect(names('READMISSION heart')).toEqual(['Heart failure readmission']);
    expect(names('zurich sepsis')).toEqual(['Sepsis early warning']);
    expect(names('cleveland sepsis')).toEqual([]);
    expect(names('10000000-0000-4000-8000-000000000004')).toEqual(['Stroke']);
    expect(names('   ')).toHaveLength(5);
  });

  it('matches a plan hash by its prefix only, from four characters on', () => {
    expect(names('AB12CD')).toEqual(['Heart disease 2027']);
    expect(names('12cd34')).toEqual([]);
    expect(names('ab1')).toEqual([]);
  });

  it('keeps one status, tells paused from running, leaves archived studies out unless asked, and combines', () => {
    expect(names('', 'current')).not.toContain('Old heart study');
    expect(names('', 'running')).toEqual(['Heart disease 2027']);
    expect(names('', 'paused')).toEqual(['Heart failure readmission']);
    expect(names('', 'draft')).toEqual(['Sepsis early warning']);
    expect(names('', 'completed')).toEqual(['Stroke']);
    expect(names('', 'stopped')).toEqual([]); // the stopped one is archived
    expect(names('', 'archived')).toEqual(['Old heart study']);
    expect(names('heart', 'current')).toEqual(['Heart disease 2027', 'Heart failure readmission']);
    expect(names('heart', 'draft')).toEqual([]);
  });

  it('asks the hub for the archived studies only when the filter needs them', () => {
    expect(archivedQueryOf('current')).toBe('exclude');
    expect(archivedQueryOf('failed')).toBe('exclude');
    expect(archivedQueryOf('archived')).toBe('only');
    expect(archivedQueryOf('everything')).toBe('include');
  });
});

describe('the progress and result of a listed study', () => {
  it('says round r of R while it runs, the final evaluation, a pause, or the state it is in', () => {
    expect(progressLabel(listedStudy(1, { progress: { round: 3 } }))).toBe('round 3 of 10');
    expect(progressLabel(listedStudy(1))).toBe('starting round 1');
    expect(progressLabel(listedStudy(1, { progress: { round: 10, finalEvaluation: 'open' } }))).toBe(
      'final evaluation',
    );
    expect(
      progressLabel(
        listedStudy(1, { paused: { since: '2026-12-02T00:00:00.000Z', reason: '' }, progress: { round: 4 } }),
      ),
    ).toBe('round 4 of 10, paused');
    expect(
      progressLabel(listedStudy(1, { status: 'completed', progress: { round: 10, finalEvaluation: 'closed' } })),
    ).toBe('completed: 10 of 10 rounds');
    expect(progressLabel(listedStudy(1, { status: 'failed', progress: { round: 2 } }))).toBe('failed at round 2 of 10');
    expect(progressLabel(listedStudy(1, { status: 'stopped' }))).toBe('stopped before round 1');
    expect(progressLabel(listedStudy(1, { status: 'draft' }))).toBe('not submitted');
    const awaiting = listedStudy(1, { status: 'awaiting_approvals' });
    awaiting.decisions[1]!.decision = null;
    expect(progressLabel(awaiting)).toBe('awaiting approval (2 of 3)');
    // A plan of an earlier format does not say how many rounds it asked for.
    expect(progressLabel(listedStudy(1, { progress: { round: 5, rounds: null } }))).toBe('round 5');
  });

  it('gives the latest mean accuracy with where it was measured and whether it is a DP estimate; none before', () => {
    expect(resultOf(listedStudy(1))).toBeNull();
    expect(
      resultOf(listedStudy(1, { progress: { accuracy: { mean: 0.8, round: 4, final: false, noisy: false } } })),
    ).toEqual({
      accuracy: 0.8,
      where: 'round 4',
      noisy: false,
    });
    expect(
      resultOf(listedStudy(1, { progress: { accuracy: { mean: 0.7, round: 11, final: true, noisy: true } } })),
    ).toEqual({
      accuracy: 0.7,
      where: 'final model',
      noisy: true,
    });
  });
});
