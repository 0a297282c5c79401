import type { Session } from './session-store.js';

/** Warned this long before an idle sign-out (ms), or a quarter of the idle timeout if that is shorter. */
export const IDLE_WARNING_MS = 2 * 60_000;
/** Warned this long before the session's fixed end (ms). */
export const END_WARNING_MS = 5 * 60_000;
/** The access token is renewed this long before it expires (ms), or a quarter of its lifetime if that is shorter. */
export const REFRESH_LEAD_MS = 60_000;
/** After a refresh failed for want of the hub (not refused), the next try waits this long (ms). */
export const REFRESH_RETRY_MS = 10_000;

export type SessionWarning =
  /** No activity for a while: signed out at `at` unless the person carries on. */
  | { kind: 'idle'; at: number }
  /** The session's fixed end is near: signed out at `at` whatever happens. */
  | { kind: 'end'; at: number };

/** What is due for a session at `now`. */
export type SessionDue =
  /** The fixed end has come. */
  | { action: 'end' }
  /** No activity for the whole idle timeout. */
  | { action: 'idle-out' }
  /** The access token is about to expire: renew it. */
  | { action: 'refresh'; warning: SessionWarning | null }
  | { action: 'none'; warning: SessionWarning | null };

export function idleWarningLeadMs(idleTimeoutMs: number): number {
  return Math.min(IDLE_WARNING_MS, idleTimeoutMs / 4);
}

/** When the access token should be renewed: REFRESH_LEAD_MS before it expires, or a quarter of its lifetime. */
export function refreshDueAt(session: Session): number {
  const lifetime = Math.max(0, session.expiresAt - session.issuedAt);
  return session.expiresAt - Math.min(REFRESH_LEAD_MS, lifetime / 4);
}

/**
 * Decides, at `now`, what a session needs: to end, to be signed out for inactivity, to be refreshed, and which
 * warning to show. `lastActivity`: the last key press or pointer event in any tab. `refreshNotBefore`: a failed
 * refresh's back-off. The fixed end wins over idleness, idleness over a refresh (an idle session is not renewed
 * in its last moment only to be ended).
 */
export function sessionDue(session: Session, lastActivity: number, now: number, refreshNotBefore = 0): SessionDue {
  if (now >= session.sessionEndsAt) return { action: 'end' };
  const idleAt = lastActivity + session.idleTimeoutMs;
  if (now >= idleAt) return { action: 'idle-out' };
  let warning: SessionWarning | null = null;
  if (session.sessionEndsAt - now <= END_WARNING_MS && session.sessionEndsAt <= idleAt) {
    warning = { kind: 'end', at: session.sessionEndsAt };
  } else if (idleAt - now <= idleWarningLeadMs(session.idleTimeoutMs)) {
    warning = { kind: 'idle', at: idleAt };
  }
  if (now >= refreshDueAt(session) && now >= refreshNotBefore) return { action: 'refresh', warning };
  return { action: 'none', warning };
}

/** "4 min 05 s", "45 s": a countdown as people read it. */
export function formatCountdown(ms: number): string {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const minutes = Math.floor(total / 60);
  const seconds = total % 60;
  if (minutes === 0) return `${seconds} s`;
  return `${minutes} min ${String(seconds).padStart(2, '0')} s`;
}
