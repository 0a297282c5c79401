import type { TLSSocket } from 'node:tls';
import type { CookieOptions, Request, Response } from 'express';

/** The refresh token's cookie (ADR 0010). */
export const REFRESH_COOKIE = 'tessera_refresh';
/** Sent only to the routes that read it: refresh and sign-out. */
export const REFRESH_COOKIE_PATH = '/api/auth';

/**
 * Whether the browser reached the hub over HTTPS: its own TLS, or a TLS proxy in front saying so in
 * X-Forwarded-Proto. The header is believed from anyone: its only effect is the Secure flag of the caller's own
 * cookie, and a client that lies about it only weakens its own cookie.
 */
export function reachedOverHttps(req: Request): boolean {
  if ((req.socket as TLSSocket).encrypted) return true;
  const forwarded = req.headers['x-forwarded-proto'];
  const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim().toLowerCase();
  return first === 'https';
}

/**
 * httpOnly (no script reads it), SameSite=Strict (no other site's page sends it), Secure over HTTPS, and a
 * browser-session cookie (no Max-Age: closing the browser forgets it, which a shared ward workstation wants).
 */
function cookieOptions(req: Request): CookieOptions {
  return { httpOnly: true, sameSite: 'strict', secure: reachedOverHttps(req), path: REFRESH_COOKIE_PATH };
}

export function setRefreshCookie(req: Request, res: Response, token: string): void {
  res.cookie(REFRESH_COOKIE, token, cookieOptions(req));
}

export function clearRefreshCookie(req: Request, res: Response): void {
  res.clearCookie(REFRESH_COOKIE, cookieOptions(req));
}

/** The refresh cookie's value in a Cookie header (RFC 6265 §5.4: `name=value` pairs joined by "; "), if present. */
export function refreshCookieOf(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0) continue;
    if (pair.slice(0, eq).trim() !== REFRESH_COOKIE) continue;
    const value = pair.slice(eq + 1).trim();
    return value.startsWith('"') && value.endsWith('"') && value.length >= 2 ? value.slice(1, -1) : value;
  }
  return undefined;
}
