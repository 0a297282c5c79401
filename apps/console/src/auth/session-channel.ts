import { asSession, type Session } from './session-store.js';

/** What the console's tabs tell each other about the one session they share (the refresh cookie is per browser). */
export type SessionMessage =
  /** Signed in, refreshed, or changed password: here is the new access token. */
  | { type: 'session'; session: Session }
  /** The person signed out: every tab signs out. */
  | { type: 'signed-out' }
  /** The session ended by itself (idle, its end, revoked): every tab asks for the password again. */
  | { type: 'lapsed'; reason: string }
  /** A key press or pointer event: the person is here (the idle timeout counts across tabs). */
  | { type: 'activity'; at: number };

/** A channel between the console's tabs in this browser (BroadcastChannel; a no-op where there is none). */
export interface SessionChannel {
  post(message: SessionMessage): void;
  /** Calls `listener` for each message from another tab; returns the function that stops listening. */
  subscribe(listener: (message: SessionMessage) => void): () => void;
  close(): void;
}

const NAME = 'tessera.session';

/** A message from another tab, checked (another tab may run an older console). */
export function asSessionMessage(data: unknown): SessionMessage | null {
  if (typeof data !== 'object' || data === null) return null;
  const m = data as Record<string, unknown>;
  switch (m.type) {
    case 'session': {
      const session = asSession(m.session);
      return session ? { type: 'session', session } : null;
    }
    case 'signed-out':
      return { type: 'signed-out' };
    case 'lapsed':
      return typeof m.reason === 'string' ? { type: 'lapsed', reason: m.reason } : null;
    case 'activity':
      return typeof m.at === 'number' ? { type: 'activity', at: m.at } : null;
    default:
      return null;
  }
}

export function browserSessionChannel(): SessionChannel {
  if (typeof BroadcastChannel === 'undefined') {
    return { post: () => undefined, subscribe: () => () => undefined, close: () => undefined };
  }
  const channel = new BroadcastChannel(NAME);
  return {
    post: (message) => channel.postMessage(message),
    subscribe(listener) {
      const onMessage = (e: Event) => {
        const message = asSessionMessage((e as Event & { data?: unknown }).data);
        if (message) listener(message);
      };
      channel.addEventListener('message', onMessage);
      return () => channel.removeEventListener('message', onMessage);
    },
    close: () => channel.close(),
  };
}

/**
 * Runs `work` while holding the browser-wide refresh lock (Web Locks API), so two tabs never refresh at the same
 * moment: the second finds the first's fresh token and need not refresh at all. Without the API, runs at once (the
 * hub's grace window for concurrent refreshes covers that case).
 */
export async function withRefreshLock<T>(work: () => Promise<T>): Promise<T> {
  const locks = (globalThis as { navigator?: { locks?: RefreshLocks } }).navigator?.locks;
  if (!locks) return work();
  return locks.request('tessera.session.refresh', work);
}

/** The part of the Web Locks API used here (`navigator.locks`). */
interface RefreshLocks {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}
