import { isIP } from 'node:net';
import type { HubConfig } from './config.schema';

/** The hub's OIDC redirect route (ADR 0010); TESSERA_OIDC_REDIRECT_URL must point at it. */
export const OIDC_CALLBACK_PATH = '/api/auth/oidc/callback';

/** The roles a claim value may map to (the account roles of accounts/user.entity.ts). */
export type OidcMappedRole = 'admin' | 'auditor';

/** Claim value → role, in the order written. */
export type OidcRoleMap = ReadonlyMap<string, OidcMappedRole>;

function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/**
 * Why an issuer URL is refused, or null. Plain http lets anyone on the path forge the provider's keys, so it is
 * accepted on a loopback address only (a provider on the hub's own machine, tests).
 */
export function oidcIssuerProblem(issuer: string): string | null {
  const url = new URL(issuer);
  if (url.protocol === 'https:') return null;
  if (url.protocol === 'http:' && isLoopback(url.hostname)) return null;
  return 'must be https, or http on a loopback address';
}

/** Whether the hub must allow plain-http requests to the provider (a loopback issuer). */
export function oidcIssuerIsPlainHttp(issuer: string): boolean {
  return new URL(issuer).protocol === 'http:';
}

/** Parses `value=role,value=role`; a message on a malformed pair, an unknown role or a value given twice. */
export function parseOidcRoleMap(text: string): OidcRoleMap | string {
  const map = new Map<string, OidcMappedRole>();
  for (const pair of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = pair.lastIndexOf('=');
    const value = pair.slice(0, eq).trim();
    const role = pair.slice(eq + 1).trim();
    if (eq < 1 || !value) return `"${pair}" is not a value=role pair`;
    if (role !== 'admin' && role !== 'auditor') return `"${role}" is not a role (admin or auditor)`;
    if (map.has(value)) return `"${value}" is mapped twice`;
    map.set(value, role);
  }
  return map;
}

/**
 * The role a person gets from the claim's value (a string or a list of strings): admin when any value maps to admin,
 * else auditor when any maps to auditor, else null (refused).
 */
export function roleFromClaim(claim: unknown, map: OidcRoleMap): OidcMappedRole | null {
  const values = typeof claim === 'string' ? [claim] : Array.isArray(claim) ? claim : [];
  const roles = values.filter((v): v is string => typeof v === 'string').map((v) => map.get(v));
  if (roles.includes('admin')) return 'admin';
  if (roles.includes('auditor')) return 'auditor';
  return null;
}

/** The OIDC settings of a hub where sign-in through an identity provider is on. */
export interface OidcSettings {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly redirectUrl: string;
  readonly providerName: string;
  readonly scopes: string;
  /** Both set, or neither: accounts are then created on first sign-in with the mapped role. */
  readonly roleClaim: string | undefined;
  readonly roleMap: OidcRoleMap | undefined;
}

/** The settings, or null when OIDC sign-in is off (the configuration checks the four are set together). */
export function oidcSettingsOf(config: HubConfig): OidcSettings | null {
  const { oidcIssuer, oidcClientId, oidcClientSecret, oidcRedirectUrl } = config;
  if (!oidcIssuer || !oidcClientId || !oidcClientSecret || !oidcRedirectUrl) return null;
  return {
    issuer: oidcIssuer,
    clientId: oidcClientId,
    clientSecret: oidcClientSecret,
    redirectUrl: oidcRedirectUrl,
    providerName: config.oidcProviderName,
    scopes: config.oidcScopes,
    roleClaim: config.oidcRoleClaim,
    roleMap: config.oidcRoleMap && config.oidcRoleMap.size > 0 ? config.oidcRoleMap : undefined,
  };
}
