import { describe, expect, it } from 'vitest';
import { oidcUsername } from '../accounts/accounts.service';
import { loadHubConfig } from './hub-config';
import { oidcIssuerProblem, parseOidcRoleMap, roleFromClaim } from './oidc-config.util';

describe('OIDC settings', () => {
  it('accepts https issuers, and plain http only on loopback', () => {
    expect(oidcIssuerProblem('https://login.hospital.example/realms/staff')).toBeNull();
    expect(oidcIssuerProblem('http://127.0.0.1:9000')).toBeNull();
    expect(oidcIssuerProblem('http://[::1]:9000')).toBeNull();
    expect(oidcIssuerProblem('http://login.hospital.example')).not.toBeNull();
    expect(oidcIssuerProblem('http://10.0.0.5')).not.toBeNull();
  });

  it('parses the claim-to-role map and says what is wrong with a bad one', () => {
    const map = parseOidcRoleMap('tessera-admins=admin, ward-audit = auditor');
    expect(map).toEqual(
      new Map([
        ['tessera-admins', 'admin'],
        ['ward-audit', 'auditor'],
      ]),
    );
    expect(parseOidcRoleMap('')).toEqual(new Map());
    expect(parseOidcRoleMap('staff')).toMatch(/not a value=role pair/);
    expect(parseOidcRoleMap('staff=owner')).toMatch(/not a role/);
    expect(parseOidcRoleMap('a=admin,a=auditor')).toMatch(/mapped twice/);
  });

  it('gives admin over auditor, and nothing to a person in no mapped group', () => {
    const map = parseOidcRoleMap('admins=admin,audit=auditor') as ReturnType<typeof parseOidcRoleMap> &
      Map<string, 'admin' | 'auditor'>;
    expect(roleFromClaim(['audit', 'admins'], map)).toBe('admin');
    expect(roleFromClaim('audit', map)).toBe('auditor');
    expect(roleFromClaim(['nurses'], map)).toBeNull();
    expect(roleFromClaim(undefined, map)).toBeNull();
    expect(roleFromClaim([42, { admins: true }], map)).toBeNull();
  });

  it('is off when unset, and refuses half a configuration', () => {
    expect(loadHubConfig({}).oidcIssuer).toBeUndefined();
    expect(() => loadHubConfig({ TESSERA_OIDC_ISSUER: 'https://login.example' })).toThrow(
      /TESSERA_OIDC_CLIENT_ID: is required with TESSERA_OIDC_ISSUER/,
    );
    expect(() => loadHubConfig({ TESSERA_OIDC_ROLE_CLAIM: 'groups' })).toThrow(/OIDC sign-in is off/);
    const full = {
      TESSERA_OIDC_ISSUER: 'https://login.example',
      TESSERA_OIDC_CLIENT_ID: 'tessera',
      TESSERA_OIDC_CLIENT_SECRET: 's3cret',
      TESSERA_OIDC_REDIRECT_URL: 'https://hub.example/api/auth/oidc/callback',
    };
    expect(loadHubConfig(full).oidcRoleMap).toEqual(new Map());
    expect(() => loadHubConfig({ ...full, TESSERA_OIDC_REDIRECT_URL: 'https://hub.example/callback' })).toThrow(
      /must end with the path \/api\/auth\/oidc\/callback/,
    );
    expect(() => loadHubConfig({ ...full, TESSERA_OIDC_ROLE_CLAIM: 'groups' })).toThrow(/must be set together/);
    expect(() => loadHubConfig({ ...full, TESSERA_OIDC_SCOPES: 'profile email' })).toThrow(/must include openid/);
  });
});

describe('oidcUsername', () => {
  it('makes a valid username from the name the provider suggests', () => {
    expect(oidcUsername('ivan@hospital.example', 'sub-1', 1)).toBe('ivan-hospital.example');
    expect(oidcUsername('Zoë Müller', 'sub-1', 1)).toBe('Zo--M-ller');
    expect(oidcUsername('ivan', 'sub-1', 3)).toBe('ivan-3');
    expect(oidcUsername('', '24400320', 1)).toBe('oidc-24400320');
    expect(oidcUsername('x'.repeat(80), 's', 12)).toHaveLength(64);
  });
});
