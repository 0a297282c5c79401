import { Body, Controller, Get, HttpCode, Post, Req, Res, UseGuards } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { ApiBearerAuth, ApiCookieAuth, ApiNoContentResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { ThrottlerGuard } from '@nestjs/throttler';
import type { Request, Response } from 'express';
import { AccountsService } from '../accounts/accounts.service';
import { HubException } from '../common/hub.exception';
import { Access, AllowsPendingPasswordChange } from '../access/access.decorator';
import { AuthService } from './auth.service';
import type { SessionClaims } from '../sessions/authenticated-user';
import { userOf, verifiedAccountOf, type AuthenticatedRequest } from '../sessions/current-user';
import { ChangePasswordDto } from './dto/change-password.dto';
import { CurrentUserDto, LoginDto } from './dto/login.dto';
import { SessionDto } from '../sessions/dto/session.dto';
import { LoginGuard } from './login.guard';
import { clearRefreshCookie, REFRESH_COOKIE, refreshCookieOf, setRefreshCookie } from './session-cookie.util';
import { SessionsService, type IssuedSession } from '../sessions/sessions.service';
import { Endpoint } from '../openapi/endpoint.decorator';

@ApiTags('auth')
@Controller('api/auth')
export class AuthController {
  constructor(
    private readonly auth: AuthService,
    private readonly sessions: SessionsService,
    private readonly accounts: AccountsService,
    private readonly jwt: JwtService,
  ) {}

  /**
   * Rate-limited per client address; a failure answers the same whether or not the account exists. Answers the
   * access token in the body and sets the refresh token as an httpOnly cookie.
   */
  @Access('public')
  @Post('login')
  @HttpCode(200)
  @UseGuards(ThrottlerGuard, LoginGuard)
  @ApiOkResponse({ type: SessionDto })
  @Endpoint({
    summary: 'Sign in: an access token in the body, the refresh token in an httpOnly cookie',
    answer: { schema: 'SessionView' },
  })
  async login(
    @Body() _body: LoginDto,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<SessionDto> {
    return this.answer(req, res, await this.auth.signIn(verifiedAccountOf(req)));
  }

  /**
   * Trades the refresh cookie for a new access token and a new refresh cookie (the old token is spent). Not behind
   * the login rate limit: a refresh token has 256 random bits, nothing to guess, and tabs behind one hospital
   * address refresh often.
   */
  @Access('public')
  @Post('refresh')
  @HttpCode(200)
  @ApiCookieAuth(REFRESH_COOKIE)
  @ApiOkResponse({ type: SessionDto })
  @Endpoint({
    summary: 'Trade the refresh cookie for a new access token and cookie',
    answer: { schema: 'SessionView' },
  })
  async refresh(@Req() req: Request, @Res({ passthrough: true }) res: Response): Promise<SessionDto> {
    try {
      return this.answer(req, res, await this.sessions.refresh(refreshCookieOf(req.headers.cookie)));
    } catch (err) {
      if (err instanceof HubException) clearRefreshCookie(req, res);
      throw err;
    }
  }

  /**
   * Signs out: revokes the session of the refresh cookie, or of the bearer token when there is no cookie (scripts),
   * and clears the cookie. Always 204: signing out twice, or with an ended session, is not an error.
   */
  @Access('public')
  @Post('logout')
  @HttpCode(204)
  @ApiNoContentResponse()
  @Endpoint({ summary: 'Sign out (always 204)', answer: { empty: true } })
  async logout(@Req() req: Request, @Res({ passthrough: true }) res: Response): Promise<void> {
    const session =
      (await this.sessions.sessionOfRefreshToken(refreshCookieOf(req.headers.cookie))) ??
      (await this.sessionOfBearer(req));
    if (session) await this.sessions.signOut(session);
    clearRefreshCookie(req, res);
  }

  @Access('admin', 'auditor')
  @AllowsPendingPasswordChange()
  @ApiBearerAuth()
  @Get('me')
  @ApiOkResponse({ type: CurrentUserDto })
  @Endpoint({ summary: 'Who is signed in', answer: { schema: 'CurrentUserView' } })
  me(@Req() req: AuthenticatedRequest): CurrentUserDto {
    const { id, username, role, mustChangePassword } = userOf(req);
    return { id, username, role, mustChangePassword };
  }

  /**
   * Changes one's own password (the current one is required). Every session of the account ends, this one
   * included, and a new session is answered: a thief holding another session is out, the person is not.
   */
  @Access('admin', 'auditor')
  @AllowsPendingPasswordChange()
  @ApiBearerAuth()
  @Post('password')
  @HttpCode(200)
  @UseGuards(ThrottlerGuard)
  @ApiOkResponse({ type: SessionDto })
  @Endpoint({
    summary: 'Change one’s own password (every session ends; a new one is answered)',
    answer: { schema: 'SessionView' },
  })
  async changePassword(
    @Body() dto: ChangePasswordDto,
    @Req() req: AuthenticatedRequest,
    @Res({ passthrough: true }) res: Response,
  ): Promise<SessionDto> {
    const issued = await this.accounts.changeOwnPassword(userOf(req), dto.currentPassword, dto.newPassword);
    return this.answer(req, res, issued);
  }

  private answer(req: Request, res: Response, issued: IssuedSession): SessionDto {
    if (issued.refreshToken !== null) setRefreshCookie(req, res, issued.refreshToken);
    return issued.view;
  }

  /** The session of a valid bearer token (signature and expiry checked; revocation is the sign-out's own check). */
  private async sessionOfBearer(req: Request): Promise<{ sessionId: string; userId: string; username: string } | null> {
    const token = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (!token) return null;
    try {
      const claims = await this.jwt.verifyAsync<SessionClaims>(token, { algorithms: ['HS256'] });
      return typeof claims.sid === 'string'
        ? { sessionId: claims.sid, userId: claims.sub, username: claims.username }
        : null;
    } catch {
      return null; // an invalid or expired token has no session left to end
    }
  }
}
