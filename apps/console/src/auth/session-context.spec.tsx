import { act, cleanup, fireEvent, render, screen } from '@testing-library/react';
import { StrictMode } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiClient } from '../api/api-client.js';
import { ApiError } from '../api/api-error.js';
import { ENDED_MESSAGE, SessionProvider, useSession } from './session-context.js';
import { MemoryStorage, sessionView, signedInStorage, TabBus } from './session.test-util.js';
import type { SessionChannel } from './session-channel.js';

/** Shows what the session context says, and offers its actions. */
function Probe({ name }: { name: string }) {
  const { session, status, warning, lapsedReason, signedOutReason, signIn, signOut, staySignedIn, api } = useSession();
  return (
    <section aria-label={name}>
      <p data-testid={`${name}-state`}>
        {status} {session?.username ?? '-'} {session?.token ?? '-'}
      </p>
      <p data-testid={`${name}-warning`}>{warning ? warning.kind : 'none'}</p>
      <p data-testid={`${name}-reason`}>{lapsedReason ?? signedOutReason ?? ''}</p>
      <button type="button" onClick={() => void signIn('alice', 'pw')}>
        {name}: sign in
      </button>
      <button type="button" onClick={() => signOut()}>
        {name}: sign out
      </button>
      <button type="button" onClick={() => void staySignedIn()}>
        {name}: stay
      </button>
      <button type="button" onClick={() => void api.studies().catch(() => undefined)}>
        {name}: read studies
      </button>
    </section>
  );
}

function fakeClient(overrides: Partial<Record<'refresh' | 'login' | 'logout', ReturnType<typeof vi.fn>>> = {}) {
  return {
    refresh: vi.fn(() => Promise.resolve(sessionView({ accessToken: 'access-2' }))),
    login: vi.fn(() => Promise.resolve(sessionView({ accessToken: 'access-login' }))),
    logout: vi.fn(() => Promise.resolve()),
    ...overrides,
  };
}

function tab(name: string, client: object, storage: MemoryStorage, channel: SessionChannel) {
  return (
    <SessionProvider key={name} client={client as unknown as ApiClient} storage={storage} channel={channel}>
      <Probe name={name} />
    </SessionProvider>
  );
}

const state = (name: string) => screen.getByTestId(`${name}-state`).textContent;

/** Lets pending promises (the fake hub's answers) settle. */
async function settle(): Promise<void> {
  await act(async () => {
    for (let i = 0; i < 5; i++) await Promise.resolve();
  });
}

async function advance(ms: number): Promise<void> {
  await act(async () => {
    await vi.advanceTimersByTimeAsync(ms);
  });
}

afterEach(() => {
  cleanup();
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('a console tab opened without a token of its own', () => {
  it('is signed in by the browser’s refresh cookie, with no sign-in, and tells the other tabs', async () => {
    const bus = new TabBus();
    const client = fakeClient();
    const storage = new MemoryStorage();
    render(tab('new', client, storage, bus.open()));
    expect(state('new')).toBe('restoring - -');
    await settle();
    expect(client.refresh).toHaveBeenCalledTimes(1);
    expect(state('new')).toBe('signed-in alice access-2');
    expect(storage.getItem('tessera.session')).toContain('"token":"access-2"');
    expect(bus.posted).toEqual([expect.objectContaining({ type: 'session' })]);
  });

  it('goes to sign-in when the browser has no session, and says so when the hub is unreachable', async () => {
    render(
      tab(
        'a',
        fakeClient({ refresh: vi.fn(() => Promise.reject(new ApiError(401, 'UNAUTHENTICATED', 'ended'))) }),
        new MemoryStorage(),
        new TabBus().open(),
      ),
    );
    await settle();
    expect(state('a')).toBe('signed-out - -');
    expect(screen.getByTestId('a-reason').textContent).toBe('');
    cleanup();
    render(
      tab(
        'b',
        fakeClient({ refresh: vi.fn(() => Promise.reject(new ApiError(0, 'NETWORK_ERROR', 'down'))) }),
        new MemoryStorage(),
        new TabBus().open(),
      ),
    );
    await settle();
    expect(state('b')).toBe('signed-out - -');
    expect(screen.getByTestId('b-reason').textContent).toContain('could not be reached');
  });
});

describe('tabs of one browser', () => {
  it('talk over a channel that survives React’s strict mode (effects mounted twice)', async () => {
    const client = fakeClient();
    const other = new BroadcastChannel('tessera.session');
    const heard: unknown[] = [];
    other.onmessage = (e: MessageEvent) => heard.push(e.data);
    try {
      render(
        <StrictMode>
          <SessionProvider client={client as unknown as ApiClient} storage={signedInStorage()}>
            <Probe name="a" />
          </SessionProvider>
        </StrictMode>,
      );
      fireEvent.click(screen.getByRole('button', { name: 'a: sign out' }));
      await settle();
      expect(state('a')).toBe('signed-out - -');
      await vi.waitFor(() => expect(heard).toEqual([{ type: 'signed-out' }]));
    } finally {
      other.close();
    }
  });

  it('share a sign-in and a sign-out', async () => {
    const bus = new TabBus();
    const refusing = () =>
      fakeClient({ refresh: vi.fn(() => Promise.reject(new ApiError(401, 'UNAUTHENTICATED', 'no'))) });
    const a = refusing();
    const b = refusing();
    render(
      <>
        {tab('a', a, new MemoryStorage(), bus.open())}
        {tab('b', b, new MemoryStorage(), bus.open())}
      </>,
    );
    await settle();
    expect(state('b')).toBe('signed-out - -');

    fireEvent.click(screen.getByRole('button', { name: 'a: sign in' }));
    await settle();
    expect(state('a')).toBe('signed-in alice access-login');
    expect(state('b')).toBe('signed-in alice access-login');
    expect(b.login).not.toHaveBeenCalled();

    fireEvent.click(screen.getByRole('button', { name: 'a: sign out' }));
    await settle();
    expect(state('a')).toBe('signed-out - -');
    expect(state('b')).toBe('signed-out - -');
    expect(screen.getByTestId('b-reason').textContent).toBe('You signed out in another tab.');
    // The session ends on the hub once, from the tab where the person signed out.
    expect(a.logout).toHaveBeenCalledTimes(1);
    expect(b.logout).not.toHaveBeenCalled();
  });

  it('renew the access token in the background before it expires, and the other tab adopts it', async () => {
    vi.useFakeTimers();
    const bus = new TabBus();
    const a = fakeClient();
    const b = fakeClient();
    const storageA = signedInStorage();
    // Tab B got its token 30 s later: its renewal is due later, by which time it has A's.
    await advance(30_000);
    const storageB = signedInStorage('admin', { accessToken: 'access-b' });
    render(
      <>
        {tab('a', a, storageA, bus.open())}
        {tab('b', b, storageB, bus.open())}
      </>,
    );
    expect(state('a')).toBe('signed-in alice access-1');
    await advance(200_000);
    expect(a.refresh).not.toHaveBeenCalled();
    // A minute before A's token expires (240 s after it was issued).
    await advance(12_000);
    expect(a.refresh).toHaveBeenCalledTimes(1);
    expect(state('a')).toBe('signed-in alice access-2');
    expect(state('b')).toBe('signed-in alice access-2');
    await advance(60_000);
    expect(b.refresh).not.toHaveBeenCalled();
  });
});

describe('a session left alone', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });

  it('warns two minutes before the idle sign-out; “Stay signed in” renews it and clears the warning', async () => {
    const client = fakeClient();
    render(tab('a', client, signedInStorage(), new TabBus().open()));
    await advance(12 * 60_000);
    expect(screen.getByTestId('a-warning').textContent).toBe('none');
    await advance(60_000 + 1000);
    expect(screen.getByTestId('a-warning').textContent).toBe('idle');
    const refreshes = client.refresh.mock.calls.length;
    fireEvent.click(screen.getByRole('button', { name: 'a: stay' }));
    await advance(1000);
    expect(client.refresh.mock.calls.length).toBe(refreshes + 1);
    expect(screen.getByTestId('a-warning').textContent).toBe('none');
    expect(state('a')).toMatch(/^signed-in/);
  });

  it('lapses after the whole idle timeout, ending the session on the hub, in every tab', async () => {
    const bus = new TabBus();
    const client = fakeClient();
    render(
      <>
        {tab('a', client, signedInStorage(), bus.open())}
        {tab('b', fakeClient(), signedInStorage(), bus.open())}
      </>,
    );
    await advance(15 * 60_000 + 1000);
    expect(state('a')).toMatch(/^lapsed alice/);
    expect(state('b')).toMatch(/^lapsed alice/);
    expect(screen.getByTestId('a-reason').textContent).toContain('signed out after 15 minutes without activity');
    expect(client.logout).toHaveBeenCalled();
  });

  it('does not lapse while the person works in another tab', async () => {
    const bus = new TabBus();
    render(tab('a', fakeClient(), signedInStorage(), bus.open()));
    // Another tab of the browser (in its own window) tells of key presses there; nothing happens in this one.
    const other = bus.open();
    for (let minute = 0; minute < 20; minute++) {
      await advance(60_000);
      other.post({ type: 'activity', at: Date.now() });
    }
    expect(state('a')).toMatch(/^signed-in/);
    await advance(15 * 60_000);
    expect(state('a')).toMatch(/^lapsed/);
  });
});

describe('a request answered 401', () => {
  function stubHub(refreshStatus: number) {
    const seen: string[] = [];
    vi.stubGlobal(
      'fetch',
      vi.fn((url: string, init: RequestInit) => {
        const auth = (init.headers as Record<string, string>).authorization ?? 'none';
        seen.push(`${init.method} ${url} ${auth}`);
        if (url === '/api/auth/refresh') {
          return Promise.resolve(
            refreshStatus === 200
              ? Response.json(sessionView({ accessToken: 'access-2' }))
              : Response.json(
                  { error: 'UNAUTHENTICATED', message: 'The session has ended.', correlationId: 'c' },
                  { status: 401 },
                ),
          );
        }
        if (auth === 'Bearer access-2') return Promise.resolve(Response.json([]));
        return Promise.resolve(
          Response.json({ error: 'UNAUTHENTICATED', message: 'expired', correlationId: 'c' }, { status: 401 }),
        );
      }),
    );
    return seen;
  }

  it('renews the session once and sends the request again with the new token', async () => {
    const seen = stubHub(200);
    render(
      <SessionProvider storage={signedInStorage()} channel={new TabBus().open()}>
        <Probe name="a" />
      </SessionProvider>,
    );
    fireEvent.click(screen.getByRole('button', { name: 'a: read studies' }));
    await settle();
    await settle();
    expect(seen).toEqual([
      'GET /api/studies Bearer access-1',
      'POST /api/auth/refresh none',
      'GET /api/studies Bearer access-2',
    ]);
    expect(state('a')).toBe('signed-in alice access-2');
  });

  it('lapses, keeping the page, when the hub refuses the refresh too (revoked, disabled)', async () => {
    stubHub(401);
    render(
      <SessionProvider storage={signedInStorage()} channel={new TabBus().open()}>
        <Probe name="a" />
      </SessionProvider>,
    );
    fireEvent.click(screen.getByRole('button', { name: 'a: read studies' }));
    await settle();
    await settle();
    expect(state('a')).toBe('lapsed alice access-1');
    expect(screen.getByTestId('a-reason').textContent).toBe(ENDED_MESSAGE);
  });
});
