import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { ApiClient } from '../api/api-client.js';
import { loadSession, saveSession, sessionOf, type Session, type SessionStorageLike } from './session-store.js';

export interface SessionContextValue {
  session: Session | null;
  api: ApiClient;
  /** Why the person was signed out (shown on the sign-in page), if not by their own choice. */
  signedOutReason: string | null;
  signIn(username: string, password: string): Promise<Session>;
  signOut(reason?: string): void;
}

const SessionContext = createContext<SessionContextValue | null>(null);

function browserStorage(): SessionStorageLike | undefined {
  try {
    return window.sessionStorage;
  } catch {
    return undefined;
  }
}

export function SessionProvider({
  children,
  storage = browserStorage(),
  client,
}: {
  children: ReactNode;
  storage?: SessionStorageLike;
  /** Tests pass a client of their own. */
  client?: ApiClient;
}) {
  const [session, setSession] = useState<Session | null>(() => loadSession(storage));
  const [signedOutReason, setSignedOutReason] = useState<string | null>(null);
  // The client reads the token through a ref, so it stays one object for the whole app.
  const tokenRef = useRef<string | null>(session?.token ?? null);
  tokenRef.current = session?.token ?? null;

  const signOut = useCallback(
    (reason?: string) => {
      saveSession(storage, null);
      tokenRef.current = null;
      setSession(null);
      setSignedOutReason(reason ?? null);
    },
    [storage],
  );

  const api = useMemo(
    () =>
      client ??
      new ApiClient(
        () => tokenRef.current,
        () => signOut('Your session expired. Please sign in again.'),
      ),
    [client, signOut],
  );

  const signIn = useCallback(
    async (username: string, password: string) => {
      const next = sessionOf(await api.login(username, password));
      saveSession(storage, next);
      tokenRef.current = next.token;
      setSignedOutReason(null);
      setSession(next);
      return next;
    },
    [api, storage],
  );

  // Sign out when the token expires, rather than letting the next click fail.
  useEffect(() => {
    if (!session) return;
    const ms = session.expiresAt - Date.now();
    const timer = window.setTimeout(
      () => signOut('Your session expired. Please sign in again.'),
      Math.max(0, Math.min(ms, 2 ** 31 - 1)),
    );
    return () => window.clearTimeout(timer);
  }, [session, signOut]);

  const value = useMemo(
    () => ({ session, api, signedOutReason, signIn, signOut }),
    [session, api, signedOutReason, signIn, signOut],
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
