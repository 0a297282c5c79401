// Sign-in: sessions and their tokens, OpenID Connect, the first administrator and the login rate limit.

import { z } from 'zod';
import { OIDC_CALLBACK_PATH, oidcIssuerProblem, parseOidcRoleMap } from './oidc-config.util';
import { positiveInt, variable } from './config-variable.util';

export const AUTH_VARIABLES = {
  jwtSecret: variable({
    name: 'TESSERA_JWT_SECRET',
    description:
      'Key that signs session tokens (at least 32 characters). Unset: a random key is generated once and kept in TESSERA_DATA_DIR/secrets/jwt.key (mode 0600).',
    secret: true,
    schema: z.string().min(32, 'must be at least 32 characters').optional(),
  }),
  sessionTtlSeconds: variable({
    name: 'TESSERA_SESSION_TTL_SECONDS',
    description:
      'Idle timeout of a console/API session in seconds: it ends this long after its last refresh (each refresh slides it forward; the console refreshes while its tab is open and signs out after this long without activity).',
    default: '900',
    secret: false,
    schema: positiveInt.max(86400),
  }),
  accessTokenTtlSeconds: variable({
    name: 'TESSERA_ACCESS_TOKEN_TTL_SECONDS',
    description:
      'Lifetime of an access (bearer) token in seconds; a refresh token gets the next one. At most TESSERA_SESSION_TTL_SECONDS (a larger value is cut to it).',
    default: '300',
    secret: false,
    schema: positiveInt.min(30).max(3600),
  }),
  sessionMaxSeconds: variable({
    name: 'TESSERA_SESSION_MAX_SECONDS',
    description:
      'Longest a session lasts from sign-in, refreshed or not, in seconds; then the person signs in again (the console warns 5 minutes before).',
    default: '43200',
    secret: false,
    schema: positiveInt.min(300).max(30 * 86400),
  }),
  oidcIssuer: variable({
    name: 'TESSERA_OIDC_ISSUER',
    description:
      "Sign-in with a hospital's identity provider (OpenID Connect, ADR 0010): the provider's issuer URL, whose `/.well-known/openid-configuration` the hub reads. https, or http on a loopback address only (tests). Unset: OIDC sign-in is off. Needs TESSERA_OIDC_CLIENT_ID, TESSERA_OIDC_CLIENT_SECRET and TESSERA_OIDC_REDIRECT_URL.",
    secret: false,
    schema: z
      .string()
      .url()
      .refine((v) => oidcIssuerProblem(v) === null, 'must be https, or http on a loopback address')
      .optional(),
  }),
  oidcClientId: variable({
    name: 'TESSERA_OIDC_CLIENT_ID',
    description: 'The client id the identity provider registered for this hub (a confidential client).',
    secret: false,
    schema: z.string().min(1).optional(),
  }),
  oidcClientSecret: variable({
    name: 'TESSERA_OIDC_CLIENT_SECRET',
    description:
      "The client's secret at the identity provider (sent with HTTP Basic authentication to its token endpoint).",
    secret: true,
    schema: z.string().min(1).optional(),
  }),
  oidcRedirectUrl: variable({
    name: 'TESSERA_OIDC_REDIRECT_URL',
    description:
      'The address the provider sends the browser back to, as registered there: the public URL of the console/API listener followed by `/api/auth/oidc/callback`.',
    secret: false,
    schema: z
      .string()
      .url()
      .refine((v) => new URL(v).pathname === OIDC_CALLBACK_PATH, `must end with the path ${OIDC_CALLBACK_PATH}`)
      .optional(),
  }),
  oidcProviderName: variable({
    name: 'TESSERA_OIDC_PROVIDER_NAME',
    description: 'The provider as the sign-in page names it ("Sign in with …").',
    default: 'single sign-on',
    secret: false,
    schema: z.string().min(1).max(60),
  }),
  oidcScopes: variable({
    name: 'TESSERA_OIDC_SCOPES',
    description:
      'Scopes requested, space-separated; `openid` is required. Add the scope that puts TESSERA_OIDC_ROLE_CLAIM in the ID token if the provider needs one.',
    default: 'openid profile',
    secret: false,
    schema: z
      .string()
      .refine((v) => v.split(/\s+/).includes('openid'), 'must include openid')
      .transform((v) => v.split(/\s+/).filter(Boolean).join(' ')),
  }),
  oidcRoleClaim: variable({
    name: 'TESSERA_OIDC_ROLE_CLAIM',
    description:
      'A claim of the ID token (a string or a list of strings, e.g. `groups`) whose values TESSERA_OIDC_ROLE_MAP turns into a role. With both set, a person the provider vouches for who has no account yet gets one on first sign-in (audited as account.created by the system). Unset: an administrator links every account.',
    secret: false,
    schema: z.string().min(1).optional(),
  }),
  oidcRoleMap: variable({
    name: 'TESSERA_OIDC_ROLE_MAP',
    description:
      'Claim values to roles, comma-separated `value=role` pairs (role admin or auditor), e.g. `tessera-admins=admin,ward-audit=auditor`. A person matching both gets admin; matching none is refused.',
    secret: false,
    schema: z
      .string()
      .optional()
      .transform((v, ctx) => {
        const parsed = parseOidcRoleMap(v ?? '');
        if (typeof parsed === 'string') {
          ctx.addIssue({ code: 'custom', message: parsed });
          return z.NEVER;
        }
        return parsed;
      }),
  }),
  adminUsername: variable({
    name: 'TESSERA_ADMIN_USERNAME',
    description:
      'First boot only: creates this administrator when the hub has no account yet (3 to 64 letters, digits, dots, dashes, underscores).',
    secret: false,
    // The account rules of accounts/account-rules.util.ts, checked here too so `config --check` catches a bad name.
    schema: z
      .string()
      .regex(/^[A-Za-z0-9._-]{3,64}$/, 'must be 3 to 64 letters, digits, dots, dashes or underscores')
      .optional(),
  }),
  adminPassword: variable({
    name: 'TESSERA_ADMIN_PASSWORD',
    description: 'First boot only: the password of TESSERA_ADMIN_USERNAME (at least 12 characters).',
    secret: true,
    schema: z.string().min(12, 'must be at least 12 characters').optional(),
  }),
  loginRateLimit: variable({
    name: 'TESSERA_LOGIN_RATE_LIMIT',
    description: 'Login attempts allowed per client address per minute.',
    default: '10',
    secret: false,
    schema: positiveInt,
  }),
} as const;
