import { cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import type { StudyView } from '@tessera/protocol';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ApiClient } from '../api/api-client.js';
import { renderWithSession, signedInStorage } from '../auth/session.test-util.js';
import { StudiesPage } from './studies-page.js';
import { LIST_SILOS, listedStudy } from './study-list.test-util.js';

afterEach(cleanup);

const CURRENT = [
  listedStudy(1, {
    name: 'Heart disease 2027',
    progress: { round: 3, accuracy: { mean: 0.8123, round: 3, final: false, noisy: false } },
  }),
  listedStudy(2, { name: 'Sepsis early warning', status: 'draft' }, [LIST_SILOS[2]!]),
  listedStudy(3, {
    name: 'Stroke outcomes',
    status: 'completed',
    progress: { round: 10, finalEvaluation: 'closed', accuracy: { mean: 0.7, round: 11, final: true, noisy: true } },
  }),
];
const ARCHIVED = listedStudy(4, { name: 'Old study', status: 'stopped', archivedAt: '2026-12-03T00:00:00.000Z' });

/** The hub's study list behind the client: GET /api/studies, and ?archived=… through json(). */
function fakeHub() {
  return {
    studies: vi.fn(() => Promise.resolve(structuredClone(CURRENT))),
    json: vi.fn((method: string, path: string): Promise<StudyView[]> => {
      if (method === 'GET' && path.endsWith('archived=only')) return Promise.resolve([structuredClone(ARCHIVED)]);
      if (method === 'GET' && path.endsWith('archived=include'))
        return Promise.resolve(structuredClone([...CURRENT, ARCHIVED]));
      return Promise.reject(new Error(`unexpected ${method} ${path}`));
    }),
  };
}

function renderPage(hub = fakeHub()) {
  const { tree } = renderWithSession(<StudiesPage />, {
    client: hub as unknown as ApiClient,
    storage: signedInStorage('auditor'),
  });
  render(tree);
  return hub;
}

const shownNames = () =>
  within(screen.getByRole('table'))
    .getAllByRole('rowheader')
    .map((h) => h.textContent);
const rowOf = (name: string) => screen.getByRole('rowheader', { name }).closest('tr')!;

describe('the studies list', () => {
  it('shows each study’s progress and its latest result, a DP estimate flagged, "—" when none', async () => {
    renderPage();
    await screen.findByRole('rowheader', { name: 'Heart disease 2027' });
    const headers = screen.getAllByRole('columnheader').map((h) => h.textContent);
    expect(headers).toEqual(['Study', 'Status', 'Plan', 'Progress', 'Result', 'Approvals', 'Privacy', 'Created']);
    const cellsOf = (name: string) => within(rowOf(name)).getAllByRole('cell');
    const column = (name: string) => headers.indexOf(name) - 1; // the row header is not a cell

    const heart = cellsOf('Heart disease 2027');
    expect(heart[column('Progress')]!.textContent).toBe('round 3 of 10');
    expect(heart[column('Result')]!.textContent).toBe('accuracy 0.812round 3');
    expect(within(heart[column('Result')]!).queryByText('DP estimate')).toBeNull();

    const stroke = cellsOf('Stroke outcomes');
    expect(stroke[column('Progress')]!.textContent).toBe('completed: 10 of 10 rounds');
    expect(within(stroke[column('Result')]!).getByText('DP estimate')).toBeTruthy();
    expect(stroke[column('Result')]!.textContent).toContain('final model');

    const sepsis = cellsOf('Sepsis early warning');
    expect(sepsis[column('Progress')]!.textContent).toBe('not submitted');
    expect(sepsis[column('Result')]!.textContent).toBe('—');
  });

  it('narrows the list as one types (a hospital’s name, a plan hash prefix), and says how many match', async () => {
    renderPage();
    await screen.findByRole('rowheader', { name: 'Heart disease 2027' });
    expect(screen.getByRole('status').textContent).toBe('3 studies');
    const search = screen.getByRole('searchbox', { name: 'Search' });
    fireEvent.change(search, { target: { value: 'zürich' } });
    expect(shownNames()).toEqual(['Heart disease 2027', 'Sepsis early warning', 'Stroke outcomes']);
    fireEvent.change(search, { target: { value: 'zurich sepsis' } });
    expect(shownNames()).toEqual(['Sepsis early warning']);
    expect(screen.getByRole('status').textContent).toBe('1 of 3 studies match');
    fireEvent.change(search, { target: { value: '3333' } });
    expect(shownNames()).toEqual(['Stroke outcomes']);
    fireEvent.change(search, { target: { value: 'nothing like it' } });
    expect(screen.getByText('No study matches')).toBeTruthy();
  });

  it('filters by status, fetching the archived studies only when asked for them', async () => {
    const hub = renderPage();
    await screen.findByRole('rowheader', { name: 'Heart disease 2027' });
    const status = screen.getByRole('combobox', { name: 'Status' });
    fireEvent.change(status, { target: { value: 'completed' } });
    expect(shownNames()).toEqual(['Stroke outcomes']);
    expect(hub.json).not.toHaveBeenCalled();
    fireEvent.change(status, { target: { value: 'archived' } });
    await screen.findByRole('rowheader', { name: 'Old study' });
    expect(shownNames()).toEqual(['Old study']);
    expect(hub.json).toHaveBeenCalledWith('GET', expect.stringContaining('archived=only'));
    fireEvent.change(status, { target: { value: 'everything' } });
    await screen.findByRole('rowheader', { name: 'Heart disease 2027' });
    expect(shownNames()).toHaveLength(4);
  });
});
