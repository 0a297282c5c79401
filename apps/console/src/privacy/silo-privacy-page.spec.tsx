import { cleanup, render, screen, within } from '@testing-library/react';
import type { SiloPrivacyView, SiloStudyPrivacyView } from '@tessera/protocol';
import { Route, Routes } from 'react-router';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ApiClient } from '../api/api-client.js';
import { ApiError } from '../api/api-error.js';
import { renderWithSession } from '../auth/session.test-util.js';
import { SiloPrivacyPage, upperFigure } from './silo-privacy-page.js';

afterEach(cleanup);

const SILO = '00000000-0000-4000-8000-00000000000a';

function line(overrides: Partial<SiloStudyPrivacyView>): SiloStudyPrivacyView {
  return {
    studyId: '10000000-0000-4000-8000-000000000001',
    studyName: 'Heart disease',
    status: 'running',
    mode: 'dp-sgd',
    unit: 'record',
    participant: true,
    epsilon: 0.5,
    plannedEpsilon: 0.98,
    targetEpsilon: 1,
    delta: 1e-5,
    trainingRounds: 2,
    evaluationReleases: 0,
    disagreements: 0,
    ...overrides,
  };
}

/** A page as the hub composes it: the total is the sum over the DP lines. */
function pageOf(studies: SiloStudyPrivacyView[]): SiloPrivacyView {
  const dp = studies.filter((s) => s.mode !== 'none');
  return {
    siloId: SILO,
    siloName: 'Cleveland',
    studies,
    total: {
      composition: 'basic',
      epsilon: dp.reduce((a, s) => a + (s.epsilon ?? 0), 0),
      delta: dp.reduce((a, s) => a + (s.delta ?? 0), 0),
      studies: dp.length,
      withoutPrivacy: studies.length - dp.length,
    },
    cap: null,
  };
}

function show(answer: Promise<SiloPrivacyView>) {
  const api = { siloPrivacy: vi.fn(() => answer), refresh: vi.fn(), logout: vi.fn(() => Promise.resolve()) };
  const { tree } = renderWithSession(
    <Routes>
      <Route path="/privacy/silos/:id" element={<SiloPrivacyPage />} />
    </Routes>,
    { client: api as unknown as ApiClient, path: `/privacy/silos/${SILO}` },
  );
  render(tree);
  return api;
}

describe('the privacy page of one silo', () => {
  it('lists each study against its plan and target, and totals by basic composition, called an upper bound', async () => {
    const api = show(
      Promise.resolve(
        pageOf([
          line({}),
          line({
            studyId: '10000000-0000-4000-8000-000000000002',
            studyName: 'Readmission',
            status: 'completed',
            mode: 'dp-fedavg',
            unit: 'silo',
            epsilon: 1.9,
            plannedEpsilon: 1.9,
            targetEpsilon: 2,
            delta: 1e-6,
            trainingRounds: 5,
          }),
          line({
            studyId: '10000000-0000-4000-8000-000000000003',
            studyName: 'Baseline',
            mode: 'none',
            unit: null,
            epsilon: null,
            plannedEpsilon: null,
            targetEpsilon: null,
            delta: null,
            trainingRounds: null,
          }),
        ]),
      ),
    );
    await screen.findByRole('heading', { name: "Privacy spent on Cleveland's data" });
    expect(api.siloPrivacy).toHaveBeenCalledWith(SILO);
    const total = screen.getByRole('note', { name: 'Total across studies' });
    expect(total.textContent).toContain('Total over 2 studies with DP: ε ≤ 2.4 at δ ≤ 1.1e-5');
    expect(total.textContent).toContain('upper bound');
    expect(total.textContent).toContain('different units');
    expect(total.textContent).toContain('1 study uses no differential privacy');
    expect(total.textContent).toContain('TESSERA_PRIVACY_CAP_EPSILON');

    const row = (name: string) => screen.getByRole('rowheader', { name }).closest('tr')!;
    expect(within(row('Heart disease')).getByRole('meter').className).toContain('gauge-spending');
    // The planned budget spent in full is success, not an alarm.
    expect(within(row('Readmission')).getByRole('meter').className).toContain('gauge-complete');
    expect(within(row('Readmission')).getByText('planned budget spent')).toBeTruthy();
    expect(within(row('Baseline')).getByText('no DP')).toBeTruthy();
    expect(within(row('Heart disease')).getByRole('link', { name: 'Heart disease' }).getAttribute('href')).toBe(
      '/studies/10000000-0000-4000-8000-000000000001',
    );
  });

  it('marks a study whose spend exceeds its target and the reports that disagreed with the hub', async () => {
    show(Promise.resolve(pageOf([line({ epsilon: 1.3, trainingRounds: 4, disagreements: 2 })])));
    const row = (await screen.findByRole('rowheader', { name: 'Heart disease' })).closest('tr')!;
    expect(within(row).getByRole('meter').className).toContain('gauge-over');
    expect(within(row).getByText("over the study's target")).toBeTruthy();
    expect(within(row).getByText(/2 reports disagreed with the hub/)).toBeTruthy();
  });

  it('says so when no study with DP was submitted, and shows the hub’s error when the silo is unknown', async () => {
    show(Promise.resolve(pageOf([])));
    expect(await screen.findByText('No study has been submitted to this silo')).toBeTruthy();
    expect(screen.getByRole('note', { name: 'Total across studies' }).textContent).toContain('no ε to total');
    cleanup();
    show(Promise.reject(new ApiError(404, 'NOT_FOUND', `No silo with id ${SILO}.`)));
    expect(await screen.findByText(`No silo with id ${SILO}.`)).toBeTruthy();
  });
});

describe('upperFigure', () => {
  it('rounds a bound up to three significant digits, never down', () => {
    expect(upperFigure(2.4)).toBe('2.4');
    expect(upperFigure(0.5 + 1.9)).toBe('2.4');
    expect(upperFigure(1e-5 + 1e-6)).toBe('1.1e-5');
    expect(upperFigure(0.123456)).toBe('0.124');
    expect(upperFigure(12.301)).toBe('12.4');
    expect(upperFigure(0)).toBe('0');
  });
});
