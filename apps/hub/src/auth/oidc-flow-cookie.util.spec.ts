import { describe, expect, it } from 'vitest';
import { oidcFlowCookieOf, OIDC_FLOW_COOKIE, safeReturnPath } from './oidc-flow-cookie.util';

describe('safeReturnPath', () => {
  it('keeps a console path with its query and #section', () => {
    expect(safeReturnPath('/studies/abc?tab=rounds#privacy')).toBe('/studies/abc?tab=rounds#privacy');
  });

  it.each(['//evil.example/x', '/\\evil.example', 'https://evil.example/', 'studies', '/api/auth/logout', '/a\nb', 7])(
    'sends %j to the studies page instead',
    (value) => {
      expect(safeReturnPath(value)).toBe('/studies');
    },
  );
});

describe('oidcFlowCookieOf', () => {
  it('finds the flow cookie among others', () => {
    expect(oidcFlowCookieOf(`a=1; ${OIDC_FLOW_COOKIE}=x.y.z; b=2`)).toBe('x.y.z');
    expect(oidcFlowCookieOf('a=1')).toBeUndefined();
    expect(oidcFlowCookieOf(undefined)).toBeUndefined();
  });
});
