import type { SessionView, UserRole } from '@tessera/protocol';

/**
 * A signed-in person as the console keeps it: in memory, and in sessionStorage to survive a reload. Only the access
 * token (minutes) is here; the refresh token is an httpOnly cookie no script can read (ADR 0010).
 */
export interface Session {
  token: string;
  username: string;
  role: UserRole;
  /** Milliseconds since the epoch when the access token was received. */
  issuedAt: number;
  /** Milliseconds since the epoch when the access token stops working. */
  expiresAt: number;
  /** When the session ends whatever happens (ms since the epoch). */
  sessionEndsAt: number;
  /** The session ends this long after its last refresh (ms); the console signs out after this long idle. */
  idleTimeoutMs: number;
  /** A temporary password: the person must change it before anything else. */
  passwordChangeRequired: boolean;
}

/** The part of the Web Storage API the console uses (sessionStorage in the browser; a map in tests). */
export interface SessionStorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

const KEY = 'tessera.session';

export function sessionOf(view: SessionView, now: number = Date.now()): Session {
  return {
    token: view.accessToken,
    username: view.username,
    role: view.role,
    issuedAt: now,
    expiresAt: now + view.expiresIn * 1000,
    sessionEndsAt: Date.parse(view.sessionExpiresAt),
    idleTimeoutMs: view.idleTimeoutSeconds * 1000,
    passwordChangeRequired: view.passwordChangeRequired,
  };
}

/** A value read from storage or another tab, if it is a whole Session. */
export function asSession(value: unknown): Session | null {
  if (typeof value !== 'object' || value === null) return null;
  const s = value as Partial<Session>;
  if (
    typeof s.token === 'string' &&
    typeof s.username === 'string' &&
    (s.role === 'admin' || s.role === 'auditor') &&
    typeof s.issuedAt === 'number' &&
    typeof s.expiresAt === 'number' &&
    typeof s.sessionEndsAt === 'number' &&
    typeof s.idleTimeoutMs === 'number' &&
    typeof s.passwordChangeRequired === 'boolean'
  ) {
    return {
      token: s.token,
      username: s.username,
      role: s.role,
      issuedAt: s.issuedAt,
      expiresAt: s.expiresAt,
      sessionEndsAt: s.sessionEndsAt,
      idleTimeoutMs: s.idleTimeoutMs,
      passwordChangeRequired: s.passwordChangeRequired,
    };
  }
  return null;
}

/** The stored session, unless it is absent, malformed or its access token expired (never localStorage). */
export function loadSession(storage: SessionStorageLike | undefined, now: number = Date.now()): Session | null {
  const raw = storage?.getItem(KEY);
  if (!raw) return null;
  try {
    const s = asSession(JSON.parse(raw));
    if (s && s.expiresAt > now) return s;
  } catch {
    // A damaged entry is as good as none: the refresh cookie, or a sign-in, makes a new one.
  }
  storage?.removeItem(KEY);
  return null;
}

export function saveSession(storage: SessionStorageLike | undefined, session: Session | null): void {
  if (!storage) return;
  if (session) storage.setItem(KEY, JSON.stringify(session));
  else storage.removeItem(KEY);
}
