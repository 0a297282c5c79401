import type { CookieOptions, Request, Response } from 'express';
import { reachedOverHttps } from './session-cookie.util';

/** Holds one sign-in attempt's state, nonce, PKCE verifier and return path, signed (ADR 0010). */
export const OIDC_FLOW_COOKIE = 'tessera_oidc';
/** Sent only to the OIDC routes. */
export const OIDC_FLOW_COOKIE_PATH = '/api/auth/oidc';
/** How long a person may take at the provider (seconds). */
export const OIDC_FLOW_SECONDS = 600;

/**
 * httpOnly, and SameSite=Lax rather than Strict: the provider sends the browser back with a top-level GET from its
 * own site, which a Strict cookie would not accompany. Lax still keeps it from every cross-site subrequest and POST.
 */
function cookieOptions(req: Request): CookieOptions {
  return { httpOnly: true, sameSite: 'lax', secure: reachedOverHttps(req), path: OIDC_FLOW_COOKIE_PATH };
}

export function setOidcFlowCookie(req: Request, res: Response, value: string): void {
  res.cookie(OIDC_FLOW_COOKIE, value, { ...cookieOptions(req), maxAge: OIDC_FLOW_SECONDS * 1000 });
}

export function clearOidcFlowCookie(req: Request, res: Response): void {
  res.clearCookie(OIDC_FLOW_COOKIE, cookieOptions(req));
}

/** The flow cookie's value in a Cookie header, if present. */
export function oidcFlowCookieOf(header: string | undefined): string | undefined {
  for (const pair of (header ?? '').split(';')) {
    const eq = pair.indexOf('=');
    if (eq > 0 && pair.slice(0, eq).trim() === OIDC_FLOW_COOKIE) return pair.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * Where the console goes after sign-in: a path of the console itself ('/…', not '//host' nor '/\\host', which
 * browsers read as another site), else the studies page. Keeps the #section (issue 19).
 */
export function safeReturnPath(value: unknown): string {
  if (typeof value !== 'string' || value.length > 2000) return '/studies';
  if (!value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\')) return '/studies';
  if (value.startsWith('/api/') || [...value].some((c) => c.charCodeAt(0) < 0x20)) return '/studies';
  return value;
}
