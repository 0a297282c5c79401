import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { ApiClient } from '../api/api-client.js';
import { ApiError } from '../api/api-error.js';
import { browserSessionChannel, withRefreshLock, type SessionChannel, type SessionMessage } from './session-channel.js';
import { loadSession, saveSession, sessionOf, type Session, type SessionStorageLike } from './session-store.js';
import { REFRESH_RETRY_MS, sessionDue, type SessionWarning } from './session-timing.js';

/**
 * - `restoring`: a tab opened without a token of its own asks the hub (with the browser's refresh cookie) whether
 *   the browser is signed in; nothing is shown or redirected meanwhile, so a deep link survives.
 * - `signed-in`: the access token is renewed in the background.
 * - `lapsed`: the session ended by itself (idle, its fixed end, revoked on the hub). The page stays mounted, hidden,
 *   under a dialog that asks for the password again, so a half-written form survives.
 * - `signed-out`: no session; the sign-in page.
 */
export type SessionStatus = 'restoring' | 'signed-in' | 'lapsed' | 'signed-out';

export interface SessionContextValue {
  /** The signed-in person (kept while lapsed, so the page and the dialog know who it was). */
  session: Session | null;
  status: SessionStatus;
  api: ApiClient;
  /** Why the person was signed out (shown on the sign-in page), if not by their own choice. */
  signedOutReason: string | null;
  /** Why the session lapsed (shown in the dialog that asks for the password again). */
  lapsedReason: string | null;
  /** A sign-out coming soon, to warn about. */
  warning: SessionWarning | null;
  // The actions are function-typed properties, not methods: pages destructure them (`const { signOut } =
  // useSession()`), so they must not use `this`.
  signIn: (username: string, password: string) => Promise<Session>;
  /**
   * Without a reason: the person signs out (the session ends on the hub, in every tab). With one: something found
   * the session unusable (a 401); the console renews it if it can, else asks for the password again.
   */
  signOut: (reason?: string) => void;
  /** From the warning: the person is here; renews the session now. */
  staySignedIn: () => Promise<void>;
  /** Changes one's own password: the hub ends every session and answers a new one. */
  changePassword: (currentPassword: string, newPassword: string) => Promise<Session>;
}

const SessionContext = createContext<SessionContextValue | null>(null);

/** Key presses and pointer events closer together than this count once (ms). */
const ACTIVITY_GRANULARITY_MS = 5_000;
/** Activity is told to the other tabs at most this often (ms). */
const ACTIVITY_BROADCAST_MS = 15_000;
/** How often the session's timers are looked at (ms): cheap, and right again at once after a laptop wakes. */
const TICK_MS = 1_000;

export const ENDED_MESSAGE = 'Your session has ended. Enter your password to carry on where you were.';

function browserStorage(): SessionStorageLike | undefined {
  try {
    return window.sessionStorage;
  } catch {
    return undefined;
  }
}

type RenewOutcome = 'renewed' | 'ended' | 'unreachable';

/** "15 minutes", "1 minute", "40 seconds". */
function duration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds % 60 !== 0) return `${seconds} seconds`;
  return seconds === 60 ? '1 minute' : `${seconds / 60} minutes`;
}

function sameWarning(a: SessionWarning | null, b: SessionWarning | null): boolean {
  return a === b || (a !== null && b !== null && a.kind === b.kind && a.at === b.at);
}

export function SessionProvider({
  children,
  storage = browserStorage(),
  client,
  channel: givenChannel,
}: {
  children: ReactNode;
  storage?: SessionStorageLike;
  /** Tests pass a client of their own. */
  client?: ApiClient;
  /** Tests pass a channel of their own (the browser's BroadcastChannel otherwise). */
  channel?: SessionChannel;
}) {
  const [initial] = useState<Session | null>(() => loadSession(storage));
  const [session, setSession] = useState<Session | null>(initial);
  const [status, setStatus] = useState<SessionStatus>(initial ? 'signed-in' : 'restoring');
  const [signedOutReason, setSignedOutReason] = useState<string | null>(null);
  const [lapsedReason, setLapsedReason] = useState<string | null>(null);
  const [warning, setWarning] = useState<SessionWarning | null>(null);
  // Opened and closed by an effect (below), so React's strict mode, which mounts effects twice, never posts to a
  // closed channel.
  const channelRef = useRef<SessionChannel | null>(null);
  const post = useCallback((message: SessionMessage) => channelRef.current?.post(message), []);

  // Refs, so the one ApiClient and the timers always see the latest state.
  const sessionRef = useRef<Session | null>(initial);
  const statusRef = useRef<SessionStatus>(status);
  const lastActivity = useRef(Date.now());
  const lastActivityPosted = useRef(0);
  const refreshNotBefore = useRef(0);
  const renewing = useRef<Promise<RenewOutcome> | null>(null);
  const apiRef = useRef<ApiClient | null>(null);

  const setBoth = useCallback((next: Session | null, nextStatus: SessionStatus) => {
    sessionRef.current = next;
    statusRef.current = nextStatus;
    setSession(next);
    setStatus(nextStatus);
  }, []);

  const adopt = useCallback(
    (next: Session, broadcast: boolean) => {
      saveSession(storage, next);
      setBoth(next, 'signed-in');
      setSignedOutReason(null);
      setLapsedReason(null);
      if (broadcast) post({ type: 'session', session: next });
    },
    [storage, post, setBoth],
  );

  const lapse = useCallback(
    (reason: string, broadcast: boolean) => {
      if (statusRef.current !== 'signed-in') return;
      saveSession(storage, null);
      setBoth(sessionRef.current, 'lapsed');
      setLapsedReason(reason);
      setWarning(null);
      if (broadcast) post({ type: 'lapsed', reason });
    },
    [storage, post, setBoth],
  );

  const endLocally = useCallback(
    (reason: string | null) => {
      saveSession(storage, null);
      setBoth(null, 'signed-out');
      setSignedOutReason(reason);
      setLapsedReason(null);
      setWarning(null);
    },
    [storage, setBoth],
  );

  /** Renews the access token with the refresh cookie; one attempt at a time in this tab, one across tabs. */
  const renew = useCallback((): Promise<RenewOutcome> => {
    renewing.current ??= withRefreshLock(async (): Promise<RenewOutcome> => {
      try {
        const view = await apiRef.current!.refresh();
        adopt(sessionOf(view), true);
        return 'renewed';
      } catch (err) {
        return err instanceof ApiError && err.status === 401 ? 'ended' : 'unreachable';
      }
    }).finally(() => {
      renewing.current = null;
    });
    return renewing.current;
  }, [adopt]);

  const api = useMemo(() => {
    const made =
      client ??
      new ApiClient(
        () => (statusRef.current === 'signed-in' ? (sessionRef.current?.token ?? null) : null),
        async () => {
          if (statusRef.current !== 'signed-in') return false;
          const outcome = await renew();
          if (outcome === 'ended') lapse(ENDED_MESSAGE, true);
          return outcome === 'renewed';
        },
      );
    apiRef.current = made;
    return made;
  }, [client, renew, lapse]);

  const signOut = useCallback(
    (reason?: string) => {
      if (reason === undefined) {
        post({ type: 'signed-out' });
        endLocally(null);
        // The hub ends the session (and clears the cookie); signed out here whatever it answers.
        void api.logout().catch(() => undefined);
        return;
      }
      void renew().then((outcome) => {
        if (outcome === 'ended') lapse(reason, true);
      });
    },
    [api, post, endLocally, renew, lapse],
  );

  const signIn = useCallback(
    async (username: string, password: string) => {
      const next = sessionOf(await api.login(username, password));
      lastActivity.current = Date.now();
      adopt(next, true);
      return next;
    },
    [api, adopt],
  );

  const changePassword = useCallback(
    async (currentPassword: string, newPassword: string) => {
      const next = sessionOf(await api.changePassword(currentPassword, newPassword));
      adopt(next, true);
      return next;
    },
    [api, adopt],
  );

  const noteActivity = useCallback(
    (at: number, broadcast: boolean) => {
      if (at - lastActivity.current < ACTIVITY_GRANULARITY_MS && broadcast) return;
      lastActivity.current = Math.max(lastActivity.current, at);
      if (broadcast && at - lastActivityPosted.current >= ACTIVITY_BROADCAST_MS) {
        lastActivityPosted.current = at;
        post({ type: 'activity', at });
      }
    },
    [post],
  );

  const staySignedIn = useCallback(async () => {
    const now = Date.now();
    lastActivity.current = now;
    lastActivityPosted.current = now;
    post({ type: 'activity', at: now });
    setWarning(null);
    if ((await renew()) === 'ended') lapse(ENDED_MESSAGE, true);
  }, [post, renew, lapse]);

  // A tab without a token of its own: is this browser signed in (the refresh cookie)?
  useEffect(() => {
    if (statusRef.current !== 'restoring') return;
    void renew().then((outcome) => {
      if (statusRef.current !== 'restoring') return;
      endLocally(outcome === 'unreachable' ? 'The hub could not be reached. Sign in when it is back.' : null);
    });
  }, [renew, endLocally]);

  // The other tabs of this browser.
  useEffect(() => {
    const channel = givenChannel ?? browserSessionChannel();
    channelRef.current = channel;
    const unsubscribe = channel.subscribe((message) => {
      switch (message.type) {
        case 'session':
          adopt(message.session, false);
          return;
        case 'signed-out':
          if (statusRef.current !== 'signed-out') endLocally('You signed out in another tab.');
          return;
        case 'lapsed':
          lapse(message.reason, false);
          return;
        case 'activity':
          noteActivity(message.at, false);
          return;
      }
    });
    return () => {
      unsubscribe();
      if (channelRef.current === channel) channelRef.current = null;
      // A channel the caller gave is the caller's to close.
      if (!givenChannel) channel.close();
    };
  }, [givenChannel, adopt, endLocally, lapse, noteActivity]);

  // This tab's activity: a key press or a pointer event.
  useEffect(() => {
    const onActivity = () => noteActivity(Date.now(), true);
    window.addEventListener('pointerdown', onActivity, { capture: true, passive: true });
    window.addEventListener('keydown', onActivity, { capture: true, passive: true });
    return () => {
      window.removeEventListener('pointerdown', onActivity, { capture: true });
      window.removeEventListener('keydown', onActivity, { capture: true });
    };
  }, [noteActivity]);

  // The session's clock: renew, warn, end.
  useEffect(() => {
    if (status !== 'signed-in') return;
    const tick = () => {
      const current = sessionRef.current;
      if (!current || statusRef.current !== 'signed-in') return;
      const now = Date.now();
      const due = sessionDue(current, lastActivity.current, now, refreshNotBefore.current);
      switch (due.action) {
        case 'end':
          lapse('Your session reached its time limit. Enter your password to carry on where you were.', true);
          return;
        case 'idle-out':
          // Ended on the hub too: an unattended screen must not keep a live session.
          void api.logout().catch(() => undefined);
          lapse(
            `You were signed out after ${duration(current.idleTimeoutMs)} without activity. Enter your password to carry on where you were.`,
            true,
          );
          return;
        case 'refresh':
          void renew().then((outcome) => {
            if (outcome === 'ended') lapse(ENDED_MESSAGE, true);
            if (outcome === 'unreachable') refreshNotBefore.current = Date.now() + REFRESH_RETRY_MS;
          });
          break;
        case 'none':
          break;
      }
      setWarning((w) => (sameWarning(w, due.warning) ? w : due.warning));
    };
    tick();
    const timer = window.setInterval(tick, TICK_MS);
    return () => window.clearInterval(timer);
  }, [status, api, renew, lapse]);

  const value = useMemo(
    () => ({
      session,
      status,
      api,
      signedOutReason,
      lapsedReason,
      warning,
      signIn,
      signOut,
      staySignedIn,
      changePassword,
    }),
    [session, status, api, signedOutReason, lapsedReason, warning, signIn, signOut, staySignedIn, changePassword],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): SessionContextValue {
  const value = useContext(SessionContext);
  if (!value) throw new Error('useSession outside SessionProvider');
  return value;
}

export function useApi(): ApiClient {
  return useSession().api;
}

/** True for administrators; auditors get a read-only console. */
export function useCanAdminister(): boolean {
  return useSession().session?.role === 'admin';
}
