import type { SessionView, UserRole } from '@tessera/protocol';

/** A signed-in person as the console keeps it: in memory, and in sessionStorage to survive a reload. */
export interface Session {
  token: string;
  username: string;
  role: UserRole;
  /** Milliseconds since the epoch when the token stops working. */
  expiresAt: number;
}

/** The part of the Web Storage API the console uses (sessionStorage in the browser; a map in tests). */
export interface SessionStorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

const KEY = 'tessera.session';

export function sessionOf(view: SessionView, now: number = Date.now()): Session {
  return { token: view.accessToken, username: view.username, role: view.role, expiresAt: now + view.expiresIn * 1000 };
}

/** The stored session, unless it is absent, malformed or expired (ADR 0001: never localStorage). */
export function loadSession(storage: SessionStorageLike | undefined, now: number = Date.now()): Session | null {
  const raw = storage?.getItem(KEY);
  if (!raw) return null;
  try {
    const s = JSON.parse(raw) as Partial<Session>;
    if (
      typeof s.token === 'string' &&
      typeof s.username === 'string' &&
      (s.role === 'admin' || s.role === 'auditor') &&
      typeof s.expiresAt === 'number' &&
      s.expiresAt > now
    ) {
      return { token: s.token, username: s.username, role: s.role, expiresAt: s.expiresAt };
    }
  } catch {
    // A damaged entry is as good as none: sign in again.
  }
  storage?.removeItem(KEY);
  return null;
}

export function saveSession(storage: SessionStorageLike | undefined, session: Session | null): void {
  if (!storage) return;
  if (session) storage.setItem(KEY, JSON.stringify(session));
  else storage.removeItem(KEY);
}
