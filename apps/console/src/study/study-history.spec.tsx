import { cleanup, render, screen, within } from '@testing-library/react';
import type {
  DecisionHistoryView,
  EvaluationMetrics,
  PlanVersionsView,
  ReleasePlan,
  RoundHistoryView,
  RoundView,
  StudyPlan,
} from '@tessera/protocol';
import { MemoryRouter } from 'react-router';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SILO_PALETTE, siloColours } from '../lib/silo-colour.js';
import { DecisionHistory } from './decision-history.js';
import { MetricCharts } from './metric-charts.js';
import { PlanVersions } from './plan-versions.js';
import { RoundHistory } from './round-history.js';
import { SiloColoursContext } from './silo-colours.js';

afterEach(cleanup);

beforeAll(() => {
  // jsdom has no layout, hence no ResizeObserver; the charts' container only needs one to exist.
  globalThis.ResizeObserver ??= class {
    observe(): void {}
    unobserve(): void {}
    disconnect(): void {}
  };
});

const AARE = { id: '00000000-0000-4000-8000-00000000000a', name: 'Aare' };
const EMME = { id: '00000000-0000-4000-8000-00000000000e', name: 'Emme' };

function history(): RoundHistoryView {
  const entry = (
    number: number,
    status: RoundHistoryView['rounds'][number]['status'],
    cells: [string, string | null][],
  ) => ({
    number,
    attempt: 1,
    kind: 'train' as const,
    status,
    openedAt: '2026-12-06T09:00:00.000Z',
    closedAt: status === 'open' ? null : '2026-12-06T09:05:00.000Z',
    closeReason: null,
    silos: cells.map(([s, reason], i) => ({
      siloId: [AARE, EMME][i]!.id,
      status: s as RoundHistoryView['rounds'][number]['silos'][number]['status'],
      reason,
    })),
  });
  return {
    studyId: 's',
    silos: [AARE, EMME],
    rounds: [
      entry(1, 'closed', [
        ['trained', null],
        ['late', 'no report before the deadline'],
      ]),
      entry(2, 'closed', [
        ['trained', null],
        ['failed', 'DATA_UNREADABLE: the export file is locked'],
      ]),
      entry(3, 'open', [
        ['waiting', null],
        ['dropped', 'dropped after its failure in round 2'],
      ]),
    ],
  };
}

describe('the round history', () => {
  it('lists every round, newest first, with each silo’s status and the reason of a failure or a drop', () => {
    render(<RoundHistory history={history()} />);
    const table = screen.getByRole('table', { name: 'Round history' });
    const rows = within(table).getAllByRole('row').slice(1);
    expect(rows.map((r) => r.getAttribute('data-round'))).toEqual(['3', '2', '1']);
    const round2 = rows[1]!;
    expect(within(round2).getByText('failed')).toBeTruthy();
    expect(within(round2).getByText('DATA_UNREADABLE: the export file is locked')).toBeTruthy();
    expect(within(rows[2]!).getByText('late').getAttribute('title')).toBe('no report before the deadline');
    expect(within(rows[0]!).getByText('dropped after its failure in round 2')).toBeTruthy();
  });

  it('shows each silo with its own colour, the same whatever the order of the silos', () => {
    const swatchOf = (name: string) =>
      (screen.getByRole('columnheader', { name }).querySelector('.silo-swatch') as HTMLElement).style.background;
    // The hub registered Emme first, then Aare: they get the palette's first two colours.
    const colours = siloColours([
      { id: AARE.id, createdAt: '2026-12-02T00:00:00.000Z' },
      { id: EMME.id, createdAt: '2026-12-01T00:00:00.000Z' },
    ]);
    const first = history();
    render(
      <SiloColoursContext.Provider value={colours}>
        <RoundHistory history={first} />
      </SiloColoursContext.Provider>,
    );
    const aare = swatchOf('Aare');
    cleanup();
    const reordered = { ...first, silos: [EMME, AARE], rounds: [] };
    render(
      <SiloColoursContext.Provider value={colours}>
        <RoundHistory
          history={{ ...reordered, rounds: first.rounds.map((r) => ({ ...r, silos: [...r.silos].reverse() })) }}
        />
      </SiloColoursContext.Provider>,
    );
    expect(swatchOf('Aare')).toBe(aare);
    expect(aare).not.toBe(swatchOf('Emme'));
    // jsdom reports the colour as rgb(): Aare, registered second, has the palette's second colour.
    const rgb = (hex: string) =>
      `rgb(${parseInt(hex.slice(1, 3), 16)}, ${parseInt(hex.slice(3, 5), 16)}, ${parseInt(hex.slice(5, 7), 16)})`;
    expect(aare).toBe(rgb(SILO_PALETTE[1]!));
    expect(swatchOf('Emme')).toBe(rgb(SILO_PALETTE[0]!));
  });
});

describe('the metric charts', () => {
  const exact = (accuracy: number): EvaluationMetrics => ({ loss: 0.5, accuracy, auc: 0.8, n: 100, positives: 40 });
  const round = (number: number, emme: EvaluationMetrics | null, emmeStatus: 'evaluated' | 'late'): RoundView => ({
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
    participants: [
      {
        siloId: AARE.id,
        siloName: AARE.name,
        status: 'evaluated',
        numExamples: null,
        updateSha256: null,
        evaluation: exact(0.7),
        failure: null,
      },
      {
        siloId: EMME.id,
        siloName: EMME.name,
        status: emmeStatus,
        numExamples: null,
        updateSha256: null,
        evaluation: emme,
        failure: null,
      },
    ],
  });
  const release: ReleasePlan = { evaluation: { mode: 'exact', rounds: 'every' }, trainingExamples: 'exact' };

  it('leaves a gap where a silo missed a round: its figure reads “missed”, not a value carried over', () => {
    const rounds = [round(1, exact(0.6), 'evaluated'), round(2, null, 'late'), round(3, exact(0.66), 'evaluated')];
    render(<MetricCharts rounds={rounds} release={release} />);
    const table = screen.getByRole('table', { name: 'Accuracy per round' });
    const emmeColumn = within(table)
      .getAllByRole('columnheader')
      .findIndex((h) => h.textContent === 'Emme');
    const emme = within(table)
      .getAllByRole('row')
      .slice(1)
      .map((r) => r.children[emmeColumn]!.textContent);
    expect(emme).toEqual(['0.600', 'missed', '0.660']);
  });

  it('also marks a silo that joined only later as missed in the earlier rounds', () => {
    const early = round(1, null, 'evaluated');
    early.participants = early.participants.slice(0, 1);
    render(<MetricCharts rounds={[early, round(2, exact(0.61), 'evaluated')]} release={release} />);
    const table = screen.getByRole('table', { name: 'AUC per round' });
    const firstRow = within(table).getAllByRole('row')[1]!;
    expect(firstRow.textContent).toContain('missed');
  });
});

describe('the decision history', () => {
  it('keeps a rejection and its reason listed after the silo approved a later version', () => {
    const view: DecisionHistoryView = {
      studyId: 's',
      currentPlanVersion: 2,
      decisions: [
        {
          siloId: AARE.id,
          siloName: 'Aare',
          planVersion: 1,
          planHash: 'a'.repeat(64),
          decision: 'reject',
          reason: 'too many rounds',
          decidedAt: '2026-12-06T09:00:00.000Z',
          current: false,
        },
        {
          siloId: EMME.id,
          siloName: 'Emme',
          planVersion: 2,
          planHash: 'b'.repeat(64),
          decision: 'approve',
          reason: null,
          decidedAt: '2026-12-06T09:30:00.000Z',
          current: true,
        },
        {
          siloId: AARE.id,
          siloName: 'Aare',
          planVersion: 2,
          planHash: 'b'.repeat(64),
          decision: 'approve',
          reason: null,
          decidedAt: '2026-12-06T10:00:00.000Z',
          current: true,
        },
      ],
    };
    render(
      <MemoryRouter>
        <DecisionHistory history={view} />
      </MemoryRouter>,
    );
    const rows = within(screen.getByRole('table', { name: 'Decision history' }))
      .getAllByRole('row')
      .slice(1);
    const aare = rows.filter((r) => r.getAttribute('data-silo') === 'Aare');
    expect(aare.map((r) => r.textContent)).toEqual([
      expect.stringMatching(/v1.*earlier version.*rejected.*too many rounds/),
      expect.stringMatching(/v2.*approved.*no reason given/),
    ]);
    expect(rows).toHaveLength(3);
  });
});

describe('the plan versions', () => {
  it('shows, field by field, what a version changed from the one before', () => {
    const plan = { name: 'p' } as unknown as StudyPlan;
    const view: PlanVersionsView = {
      studyId: 's',
      versions: [
        { version: 1, planHash: 'a'.repeat(64), createdAt: '2026-12-06T09:00:00.000Z', plan, changes: [] },
        {
          version: 2,
          planHash: 'b'.repeat(64),
          createdAt: '2026-12-06T10:00:00.000Z',
          plan,
          changes: [
            { path: 'training.rounds', kind: 'changed', before: 4, after: 3 },
            { path: 'screening', kind: 'added', after: { threshold: 3.5, exclude: true } },
          ],
        },
      ],
    };
    render(<PlanVersions versions={view} />);
    const table = screen.getByRole('table', { name: 'Changes in version 2' });
    const cells = within(table)
      .getAllByRole('row')
      .slice(1)
      .map((r) => [...r.children].map((c) => c.textContent));
    expect(cells).toEqual([
      ['training.rounds', '4', '3'],
      ['screening', 'absent', '{"threshold":3.5,"exclude":true}'],
    ]);
  });

  it('says there is nothing to compare with one version', () => {
    render(<PlanVersions versions={{ studyId: 's', versions: [] }} />);
    expect(screen.getByText(/nothing to compare/)).toBeTruthy();
  });
});
