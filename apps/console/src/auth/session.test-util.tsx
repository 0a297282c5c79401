import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import type { SessionView, UserRole } from '@tessera/protocol';
import type { ReactNode } from 'react';
import { MemoryRouter } from 'react-router';
import type { ApiClient } from '../api/api-client.js';
import type { SessionChannel, SessionMessage } from './session-channel.js';
import { SessionProvider } from './session-context.js';
import { saveSession, sessionOf, type SessionStorageLike } from './session-store.js';

/** sessionStorage of one tab. */
export class MemoryStorage implements SessionStorageLike {
  readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
}

/** The BroadcastChannel between a browser's tabs: each `open()` is one tab's end. */
export class TabBus {
  private readonly ends = new Set<{ deliver(m: SessionMessage): void }>();
  /** Every message posted, in order, by any tab. */
  readonly posted: SessionMessage[] = [];

  open(): SessionChannel {
    const listeners = new Set<(m: SessionMessage) => void>();
    const end = { deliver: (m: SessionMessage) => listeners.forEach((l) => l(m)) };
    this.ends.add(end);
    return {
      post: (m) => {
        this.posted.push(m);
        for (const other of this.ends) if (other !== end) other.deliver(structuredClone(m));
      },
      subscribe: (l) => {
        listeners.add(l);
        return () => listeners.delete(l);
      },
      close: () => this.ends.delete(end),
    };
  }
}

export function sessionView(overrides: Partial<SessionView> = {}): SessionView {
  return {
    accessToken: 'access-1',
    expiresIn: 300,
    role: 'admin',
    username: 'alice',
    sessionExpiresAt: new Date(Date.now() + 12 * 3600_000).toISOString(),
    idleTimeoutSeconds: 900,
    passwordChangeRequired: false,
    ...overrides,
  };
}

/** A storage holding a signed-in session, as after a sign-in in this tab. */
export function signedInStorage(role: UserRole = 'admin', overrides: Partial<SessionView> = {}): MemoryStorage {
  const storage = new MemoryStorage();
  saveSession(storage, sessionOf(sessionView({ role, ...overrides })));
  return storage;
}

/** Renders `children` as the console does: queries, the session (on the given client), a router. */
export function renderWithSession(
  children: ReactNode,
  options: {
    client: ApiClient;
    storage?: MemoryStorage;
    channel?: SessionChannel;
    path?: string;
    /** Where sign-in should lead (the router state the Shell sets). */
    from?: string;
  },
): { queryClient: QueryClient; tree: ReactNode } {
  const queryClient = new QueryClient({ defaultOptions: { queries: { retry: false }, mutations: { retry: false } } });
  const tree = (
    <QueryClientProvider client={queryClient}>
      <SessionProvider
        client={options.client}
        storage={options.storage ?? signedInStorage()}
        channel={options.channel ?? new TabBus().open()}
      >
        <MemoryRouter
          initialEntries={[{ pathname: options.path ?? '/', state: options.from ? { from: options.from } : null }]}
        >
          {children}
        </MemoryRouter>
      </SessionProvider>
    </QueryClientProvider>
  );
  return { queryClient, tree };
}
