import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import type { SiloView, StudyDraftView, StudyView } from '@tessera/protocol';
import type { ReactNode } from 'react';
import { MemoryRouter, Route, Routes, useLocation } from 'react-router';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ApiClient } from '../api/api-client.js';
import { SessionProvider } from '../auth/session-context.js';
import { signedInStorage, TabBus } from '../auth/session.test-util.js';
import { StudyLifecycleActions } from './study-lifecycle-actions.js';
import { NewStudyPage } from './study-wizard-page.js';

afterEach(cleanup);

const SILOS = [1, 2].map((n): SiloView => ({
  id: `00000000-0000-4000-8000-00000000000${n}`,
  name: `Hospital ${n}`,
  contact: 'it@example.org',
  status: 'enrolled',
  suspendedReason: null,
  lastSeenAt: null,
  createdAt: '2026-11-22T09:00:00.000Z',
  certificate: null,
  enrollmentPending: null,
}));

/** The hub's draft store, in memory, behind the client's json/send (the unit seam of the console). */
function fakeHub() {
  const drafts = new Map<string, StudyDraftView>();
  const calls: { method: string; path: string; body: unknown }[] = [];
  let n = 0;
  const json = vi.fn((method: string, path: string, body?: unknown) => {
    calls.push({ method, path, body });
    const content = body as { form: Record<string, unknown>; step: number };
    const at = new Date(Date.UTC(2026, 11, 6, 9, 0, n)).toISOString();
    if (method === 'POST' && path === '/api/study-drafts') {
      const id = `00000000-0000-4000-8000-0000000000d${++n}`;
      const d: StudyDraftView = {
        id,
        title: typeof content.form.name === 'string' && content.form.name !== '' ? content.form.name : 'Untitled draft',
        studyId: null,
        form: content.form,
        step: content.step,
        createdBy: 'u',
        createdAt: at,
        updatedAt: at,
      };
      drafts.set(id, d);
      return Promise.resolve(d);
    }
    const id = path.split('/').pop()!;
    const d = drafts.get(id);
    if (!d) return Promise.reject(new Error(`no draft ${id}`));
    if (method === 'PUT') {
      const saved = { ...d, form: content.form, step: content.step, updatedAt: at };
      drafts.set(id, saved);
      return Promise.resolve(saved);
    }
    return Promise.resolve(structuredClone(d));
  });
  return {
    drafts,
    calls,
    client: {
      silos: () => Promise.resolve(SILOS),
      json,
      send: vi.fn(() => Promise.resolve(new Response(null, { status: 204 }))),
      refresh: vi.fn(),
      logout: vi.fn(() => Promise.resolve()),
    },
  };
}

function Where() {
  const l = useLocation();
  return <output data-testid="where">{`${l.pathname}${l.search}`}</output>;
}

function renderAt(client: unknown, url: string, element: ReactNode) {
  const queryClient = new QueryClient({ defaultOptions: { queries: { retry: false }, mutations: { retry: false } } });
  render(
    <QueryClientProvider client={queryClient}>
      <SessionProvider client={client as ApiClient} storage={signedInStorage()} channel={new TabBus().open()}>
        <MemoryRouter initialEntries={[url]}>
          <Routes>
            <Route path="/studies/new" element={element} />
            <Route path="/studies/:id" element={<Where />} />
          </Routes>
          <Where />
        </MemoryRouter>
      </SessionProvider>
    </QueryClientProvider>,
  );
}

describe('drafts saved on the hub', () => {
  it('creates the draft at the first edit, saves later edits, and resumes it after a reload', async () => {
    const hub = fakeHub();
    renderAt(hub.client, '/studies/new', <NewStudyPage />);
    const name = await screen.findByLabelText('Study name');
    expect(hub.calls).toEqual([]); // opening the wizard saves nothing
    fireEvent.change(name, { target: { value: 'Sepsis early warning' } });
    await waitFor(() => expect(hub.calls.map((c) => c.method)).toEqual(['POST']), { timeout: 3000 });
    expect(hub.calls[0]!.body).toMatchObject({ form: { name: 'Sepsis early warning' }, step: 0 });
    const [id] = [...hub.drafts.keys()];
    await waitFor(() => expect(screen.getAllByTestId('where')[0]!.textContent).toBe(`/studies/new?draft=${id}`));
    await screen.findByText(/Draft saved on the hub/);

    fireEvent.change(screen.getByLabelText('Purpose'), { target: { value: 'Warn of sepsis six hours earlier.' } });
    fireEvent.click(screen.getByRole('button', { name: 'Next' }));
    await waitFor(() => expect(hub.calls.map((c) => c.method)).toEqual(['POST', 'PUT']), { timeout: 3000 });
    expect(hub.drafts.get(id!)).toMatchObject({
      form: { name: 'Sepsis early warning', purpose: 'Warn of sepsis six hours earlier.' },
      step: 1,
    });

    // A reload (or a new sign-in after the session expired) opens the address with the draft's id.
    cleanup();
    renderAt(hub.client, `/studies/new?draft=${id}`, <NewStudyPage />);
    await screen.findByRole('heading', { name: /2\./ });
    fireEvent.click(screen.getByRole('button', { name: 'Back' }));
    expect(screen.getByLabelText('Study name')).toHaveProperty('value', 'Sepsis early warning');
    expect(screen.getByLabelText('Purpose')).toHaveProperty('value', 'Warn of sepsis six hours earlier.');
  });

  it('saves what is pending at once when the page is left before the pause', async () => {
    const hub = fakeHub();
    renderAt(hub.client, '/studies/new', <NewStudyPage />);
    fireEvent.change(await screen.findByLabelText('Study name'), { target: { value: 'Left at once' } });
    cleanup();
    await waitFor(() => expect(hub.calls.map((c) => c.method)).toEqual(['POST']));
    expect(hub.calls[0]!.body).toMatchObject({ form: { name: 'Left at once' } });
  });
});

describe('study lifecycle actions', () => {
  const study = (over: Partial<StudyView>): StudyView =>
    ({
      id: '00000000-0000-4000-8000-0000000000aa',
      name: 'S',
      status: 'running',
      planVersion: 2,
      paused: null,
      archivedAt: null,
      ...over,
    }) as StudyView;

  function renderActions(s: StudyView) {
    const json = vi.fn((_method: string, path: string) =>
      Promise.resolve(
        path.endsWith('/clone') ? study({ id: '00000000-0000-4000-8000-0000000000bb', status: 'draft' }) : s,
      ),
    );
    const client = { json, refresh: vi.fn(), logout: vi.fn(() => Promise.resolve()) };
    const queryClient = new QueryClient();
    render(
      <QueryClientProvider client={queryClient}>
        <SessionProvider
          client={client as unknown as ApiClient}
          storage={signedInStorage()}
          channel={new TabBus().open()}
        >
          <MemoryRouter initialEntries={[`/studies/${s.id}`]}>
            <StudyLifecycleActions study={s} />
            <Where />
          </MemoryRouter>
        </SessionProvider>
      </QueryClientProvider>,
    );
    return json;
  }

  it('offers what the state allows: pause while running, resume while paused, archive once ended', () => {
    renderActions(study({}));
    expect(screen.getByRole('button', { name: 'Pause' })).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Resume' })).toBeNull();
    expect(screen.queryByRole('button', { name: 'Archive' })).toBeNull();
    cleanup();
    renderActions(study({ paused: { since: '2026-12-06T09:00:00.000Z', reason: 'r' } }));
    expect(screen.getByRole('button', { name: 'Resume' })).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Pause' })).toBeNull();
    cleanup();
    renderActions(study({ status: 'completed' }));
    expect(screen.getByRole('button', { name: 'Archive' })).toBeTruthy();
    cleanup();
    renderActions(study({ status: 'completed', archivedAt: '2026-12-06T09:00:00.000Z' }));
    expect(screen.getByRole('button', { name: 'Unarchive' })).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Archive' })).toBeNull();
  });

  it('pauses with the reason typed, and opens the clone once made', async () => {
    const json = renderActions(study({}));
    fireEvent.click(screen.getByRole('button', { name: 'Pause' }));
    fireEvent.change(screen.getByLabelText('Reason'), { target: { value: 'site migration' } });
    fireEvent.click(screen.getByRole('button', { name: 'Pause the study' }));
    await waitFor(() =>
      expect(json).toHaveBeenCalledWith('POST', '/api/studies/00000000-0000-4000-8000-0000000000aa/pause', {
        reason: 'site migration',
      }),
    );
    fireEvent.click(screen.getByRole('button', { name: 'Clone as draft' }));
    fireEvent.click(screen.getByRole('button', { name: 'Clone' }));
    await waitFor(() =>
      expect(screen.getByTestId('where').textContent).toBe('/studies/00000000-0000-4000-8000-0000000000bb'),
    );
  });
});
