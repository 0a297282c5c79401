import { Controller, Get, Query, Req, Res, UseGuards } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { ThrottlerGuard } from '@nestjs/throttler';
import type { OidcSignInOptionsView } from '@tessera/protocol';
import type { Request, Response } from 'express';
import { HubException } from '../common/hub.exception';
import { Endpoint } from '../openapi/endpoint.decorator';
import { Access } from '../access/access.decorator';
import { clearOidcFlowCookie, oidcFlowCookieOf, setOidcFlowCookie } from './oidc-flow-cookie.util';
import { OidcSignInRefused, OidcSignInService } from './oidc-sign-in.service';
import { setRefreshCookie } from './session-cookie.util';

/** The console's sign-in page; a refusal is shown there from its `oidcError` query parameter. */
const SIGN_IN_PAGE = '/sign-in';

function signInPageSaying(message: string): string {
  return `${SIGN_IN_PAGE}?${new URLSearchParams({ oidcError: message }).toString()}`;
}

/**
 * Sign-in with a hospital's identity provider (OpenID Connect, ADR 0010). Browser routes: each answers a 303
 * redirect, to the provider, back to the console, or to the sign-in page with the reason for a refusal.
 */
@ApiTags('auth')
@Controller('api/auth/oidc')
export class OidcController {
  constructor(private readonly oidc: OidcSignInService) {}

  @Access('public')
  @Get()
  @Endpoint({
    summary: 'Whether sign-in with an identity provider is offered, and its name',
    answer: { schema: 'OidcSignInOptionsView' },
  })
  options(): OidcSignInOptionsView {
    return this.oidc.options();
  }

  /** Sets the attempt's flow cookie (state, nonce, PKCE verifier, signed) and sends the browser to the provider. */
  @Access('public')
  @Get('start')
  @UseGuards(ThrottlerGuard)
  @Endpoint({
    summary: 'Start a sign-in at the identity provider (303 to the provider)',
    description: '`returnTo`: the console path (with its #section) to come back to after sign-in.',
    answer: { media: ['text/plain'], description: 'A 303 redirect to the provider, or to the sign-in page.' },
  })
  async start(@Query('returnTo') returnTo: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    try {
      const { url, flowCookie } = await this.oidc.begin(returnTo);
      setOidcFlowCookie(req, res, flowCookie);
      res.redirect(303, url);
    } catch (err) {
      if (!(err instanceof HubException)) throw err;
      res.redirect(303, signInPageSaying(err.message));
    }
  }

  /**
   * The provider's answer: checks it against the flow cookie, signs the linked account in (the refresh cookie, as
   * a password sign-in sets it) and sends the browser back to where it started; the console then refreshes.
   */
  @Access('public')
  @Get('callback')
  @UseGuards(ThrottlerGuard)
  @Endpoint({
    summary: 'The identity provider’s answer (303 to the console, signed in or with the refusal)',
    answer: { media: ['text/plain'], description: 'A 303 redirect to the console.' },
  })
  async callback(@Req() req: Request, @Res() res: Response): Promise<void> {
    const query = req.originalUrl.includes('?') ? req.originalUrl.slice(req.originalUrl.indexOf('?')) : '';
    clearOidcFlowCookie(req, res);
    try {
      const { issued, returnTo } = await this.oidc.complete(query, oidcFlowCookieOf(req.headers.cookie));
      if (issued.refreshToken !== null) setRefreshCookie(req, res, issued.refreshToken);
      res.redirect(303, returnTo);
    } catch (err) {
      if (err instanceof OidcSignInRefused || err instanceof HubException) {
        res.redirect(303, signInPageSaying(err.message));
        return;
      }
      throw err;
    }
  }
}
