import { Inject, Injectable, Logger } from '@nestjs/common';
import * as oidc from 'openid-client';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { HubConfig } from '../config/config.schema';
import { HUB_CONFIG } from '../config/hub-config';
import { oidcIssuerIsPlainHttp, oidcSettingsOf, type OidcSettings } from '../config/oidc-config.util';

/** What one sign-in attempt keeps between the redirect to the provider and its return (in the flow cookie). */
export interface OidcFlowChecks {
  readonly state: string;
  readonly nonce: string;
  readonly codeVerifier: string;
}

/** The ID token's claims the hub uses. */
export interface VerifiedIdToken {
  readonly issuer: string;
  readonly subject: string;
  readonly claims: Readonly<Record<string, unknown>>;
}

/** Why the provider's answer was not accepted: the provider said no, or a check failed. */
export class OidcAnswerRefused extends Error {
  constructor(
    readonly reason: 'provider-error' | 'checks-failed',
    message: string,
  ) {
    super(message);
    this.name = 'OidcAnswerRefused';
  }
}

/**
 * The hub as a confidential client of the identity provider (openid-client): authorization code flow with PKCE
 * (S256), `state` and `nonce` (ADR 0010). The provider's metadata and keys are read at the first sign-in, not at
 * boot, so a provider that is down does not stop the hub; a failed discovery is tried again at the next sign-in.
 */
@Injectable()
export class OidcProviderClient {
  private readonly logger = new Logger(OidcProviderClient.name);
  readonly settings: OidcSettings | null;
  private discovered: Promise<oidc.Configuration> | undefined;

  constructor(@Inject(HUB_CONFIG) config: HubConfig) {
    this.settings = oidcSettingsOf(config);
  }

  /** The provider's authorization URL for a new attempt, and the checks its answer must pass. */
  async begin(): Promise<{ url: URL; checks: OidcFlowChecks }> {
    const { settings, configuration } = await this.configured();
    const checks = {
      state: oidc.randomState(),
      nonce: oidc.randomNonce(),
      codeVerifier: oidc.randomPKCECodeVerifier(),
    };
    const url = oidc.buildAuthorizationUrl(configuration, {
      redirect_uri: settings.redirectUrl,
      scope: settings.scopes,
      response_type: 'code',
      code_challenge: await oidc.calculatePKCECodeChallenge(checks.codeVerifier),
      code_challenge_method: 'S256',
      state: checks.state,
      nonce: checks.nonce,
    });
    return { url, checks };
  }

  /**
   * Trades the code of the provider's answer (the callback's query string) for tokens, checking `state`, the PKCE
   * verifier, and the ID token: signature (the provider's JWKS), issuer, audience, expiry and `nonce`.
   */
  async finish(query: string, checks: OidcFlowChecks): Promise<VerifiedIdToken> {
    const { settings, configuration } = await this.configured();
    const callback = new URL(settings.redirectUrl);
    callback.search = query;
    let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
    try {
      tokens = await oidc.authorizationCodeGrant(configuration, callback, {
        expectedState: checks.state,
        expectedNonce: checks.nonce,
        pkceCodeVerifier: checks.codeVerifier,
        idTokenExpected: true,
      });
    } catch (err) {
      if (err instanceof oidc.AuthorizationResponseError) {
        throw new OidcAnswerRefused('provider-error', `${err.error}: ${err.error_description ?? ''}`.trim());
      }
      if (err instanceof oidc.ResponseBodyError || err instanceof oidc.ClientError) {
        // openid-client's message is generic; the check that failed (state, nonce, iss…) is in its cause.
        const cause = err.cause instanceof Error ? ` (${err.cause.message})` : '';
        throw new OidcAnswerRefused('checks-failed', `${err.code ?? err.name}: ${err.message}${cause}`);
      }
      throw err;
    }
    const claims = tokens.claims();
    if (!claims) throw new OidcAnswerRefused('checks-failed', 'the token answer has no ID token');
    return { issuer: claims.iss, subject: claims.sub, claims };
  }

  private async configured(): Promise<{ settings: OidcSettings; configuration: oidc.Configuration }> {
    const settings = this.settings;
    if (!settings) throw new HubException(HubErrorCode.NOT_FOUND, 'Sign-in with an identity provider is not set up.');
    this.discovered ??= oidc.discovery(
      new URL(settings.issuer),
      settings.clientId,
      undefined,
      oidc.ClientSecretBasic(settings.clientSecret),
      // Plain http only for a loopback issuer (the configuration refuses any other).
      oidcIssuerIsPlainHttp(settings.issuer) ? { execute: [oidc.allowInsecureRequests] } : undefined,
    );
    try {
      return { settings, configuration: await this.discovered };
    } catch (err) {
      this.discovered = undefined;
      this.logger.warn(`the identity provider ${settings.issuer} could not be read: ${String(err)}`);
      throw new HubException(
        HubErrorCode.SERVICE_UNAVAILABLE,
        'The identity provider could not be reached. Try again, or sign in with a password.',
        undefined,
        { retryAfterSeconds: 30, cause: err },
      );
    }
  }
}
