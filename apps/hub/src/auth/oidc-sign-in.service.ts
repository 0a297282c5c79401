import { Injectable } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import type { OidcSignInOptionsView } from '@tessera/protocol';
import { AccountsService } from '../accounts/accounts.service';
import type { UserEntity } from '../accounts/user.entity';
import { AuditTrail } from '../audit/audit-trail';
import { roleFromClaim } from '../config/oidc-config.util';
import { AuthService } from './auth.service';
import { OIDC_FLOW_SECONDS, safeReturnPath } from './oidc-flow-cookie.util';
import {
  OidcAnswerRefused,
  OidcProviderClient,
  type OidcFlowChecks,
  type VerifiedIdToken,
} from './oidc-provider-client.service';
import type { IssuedSession } from '../sessions/sessions.service';

/** Why a sign-in through the provider was refused; each is audited as `auth.login.failed` with `method: oidc`. */
export type OidcRefusal =
  'flow-missing' | 'provider-error' | 'checks-failed' | 'unlinked' | 'no-mapped-role' | 'disabled';

/** What the person reads on the sign-in page: no internals, but enough to know what to do. */
export const OIDC_REFUSAL_MESSAGES: Record<OidcRefusal, string> = {
  'flow-missing': 'The sign-in took too long or was started in another browser. Start it again.',
  'provider-error': 'The identity provider did not sign you in. Start again, or ask its administrator.',
  'checks-failed':
    "The identity provider's answer did not pass the hub's checks (state, nonce or signature). Start the sign-in again.",
  unlinked:
    'Your identity at the identity provider is not linked to a Tessera account. Ask a Tessera administrator to link it (the refusal is in the audit log with your identity).',
  'no-mapped-role':
    'The identity provider gave you none of the groups that grant access to Tessera. Ask a Tessera administrator.',
  disabled: 'This Tessera account is disabled. Ask a Tessera administrator.',
};

/** A refused sign-in: the reason (audited) and the person's message. */
export class OidcSignInRefused extends Error {
  constructor(readonly reason: OidcRefusal) {
    super(OIDC_REFUSAL_MESSAGES[reason]);
    this.name = 'OidcSignInRefused';
  }
}

/** The signed content of the flow cookie. */
interface FlowClaims extends OidcFlowChecks {
  returnTo: string;
}

/** The audience of flow cookies: never accepted as an access token (those carry a session id and no audience). */
const FLOW_AUDIENCE = 'tessera:oidc-flow';

/**
 * Sign-in with a hospital's identity provider (ADR 0010). It ends where a password sign-in ends, in AuthService and
 * SessionsService.start(): refresh, revocation and the console are the same. An account is found by its linked
 * (issuer, sub); with a role claim mapping configured, a person the provider vouches for gets an account on first
 * sign-in. Every sign-in and refusal is audited like a password sign-in.
 */
@Injectable()
export class OidcSignInService {
  constructor(
    private readonly provider: OidcProviderClient,
    private readonly accounts: AccountsService,
    private readonly auth: AuthService,
    private readonly audit: AuditTrail,
    private readonly jwt: JwtService,
  ) {}

  options(): OidcSignInOptionsView {
    const settings = this.provider.settings;
    return { enabled: settings !== null, providerName: settings?.providerName ?? null };
  }

  /** The provider's URL to send the browser to, and the signed flow cookie to set. */
  async begin(returnTo: unknown): Promise<{ url: string; flowCookie: string }> {
    const { url, checks } = await this.provider.begin();
    const claims: FlowClaims = { ...checks, returnTo: safeReturnPath(returnTo) };
    const flowCookie = await this.jwt.signAsync(claims, { expiresIn: OIDC_FLOW_SECONDS, audience: FLOW_AUDIENCE });
    return { url: url.href, flowCookie };
  }

  /**
   * Checks the provider's answer against the attempt's cookie and signs the linked account in. Throws
   * OidcSignInRefused (audited) when the person may not sign in.
   */
  async complete(query: string, flowCookie: string | undefined): Promise<{ issued: IssuedSession; returnTo: string }> {
    const flow = await this.flowOf(flowCookie);
    if (!flow) return this.refuse('flow-missing', {});
    let token: VerifiedIdToken;
    try {
      token = await this.provider.finish(query, flow);
    } catch (err) {
      if (err instanceof OidcAnswerRefused) return this.refuse(err.reason, { problem: err.message });
      throw err;
    }
    const account = await this.accountOf(token);
    if (account.disabled) return this.refuse('disabled', this.who(token), account);
    const replacement = await this.accounts.temporaryPasswordReplacement(account);
    const issued = await this.auth.signIn(
      { id: account.id, username: account.username, role: account.role, mustChangePassword: false },
      { method: 'oidc', issuer: token.issuer, ...(replacement ? { replacedTemporary: true } : {}) },
      replacement ?? undefined,
    );
    return { issued, returnTo: flow.returnTo };
  }

  /** The linked account, or one created by the role mapping; refuses when neither. */
  private async accountOf(token: VerifiedIdToken): Promise<UserEntity> {
    const identity = { issuer: token.issuer, subject: token.subject };
    const linked = await this.accounts.findByOidcIdentity(identity);
    if (linked) return linked;
    const { roleClaim, roleMap } = this.provider.settings ?? {};
    if (!roleClaim || !roleMap) return this.refuse('unlinked', this.who(token));
    const role = roleFromClaim(token.claims[roleClaim], roleMap);
    if (!role) return this.refuse('no-mapped-role', this.who(token));
    const name = token.claims.preferred_username ?? token.claims.email;
    try {
      return await this.accounts.createForOidcIdentity(identity, typeof name === 'string' ? name : '', role);
    } catch (err) {
      // A first sign-in of the same person in two tabs at once: the other one created the account.
      const created = await this.accounts.findByOidcIdentity(identity);
      if (created) return created;
      throw err;
    }
  }

  private who(token: VerifiedIdToken): Record<string, unknown> {
    const name = token.claims.preferred_username;
    return {
      issuer: token.issuer,
      oidcSubject: token.subject,
      ...(typeof name === 'string' ? { providerUsername: name } : {}),
    };
  }

  private async refuse(reason: OidcRefusal, details: Record<string, unknown>, account?: UserEntity): Promise<never> {
    await this.audit.record({
      actor: account
        ? { type: 'user', id: account.id, name: account.username }
        : {
            type: 'user',
            id: 'unknown',
            ...(typeof details.oidcSubject === 'string' ? { name: details.oidcSubject } : {}),
          },
      action: 'auth.login.failed',
      ...(account ? { subject: { userId: account.id } } : {}),
      details: { method: 'oidc', reason, ...details },
    });
    throw new OidcSignInRefused(reason);
  }

  private async flowOf(cookie: string | undefined): Promise<FlowClaims | null> {
    if (!cookie) return null;
    try {
      const claims = await this.jwt.verifyAsync<FlowClaims>(cookie, { algorithms: ['HS256'], audience: FLOW_AUDIENCE });
      const fields = [claims.state, claims.nonce, claims.codeVerifier, claims.returnTo];
      return fields.every((f) => typeof f === 'string') ? claims : null;
    } catch {
      return null; // expired or not ours: the attempt is over, the person starts again
    }
  }
}
