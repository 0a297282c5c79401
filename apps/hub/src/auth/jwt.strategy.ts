import { Inject, Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { ExtractJwt, Strategy } from 'passport-jwt';
import { AccountsService } from '../accounts/accounts.service';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { SESSION_KEY } from './session-key';
import type { AuthenticatedUser, SessionClaims } from './authenticated-user';

/** Verifies the bearer session token, then re-reads the account so a disabled user or changed role takes effect at once. */
@Injectable()
export class JwtStrategy extends PassportStrategy(Strategy, 'jwt') {
  constructor(
    private readonly accounts: AccountsService,
    @Inject(SESSION_KEY) key: string,
  ) {
    super({
      jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(),
      secretOrKey: key,
      algorithms: ['HS256'],
      ignoreExpiration: false,
    });
  }

  async validate(claims: SessionClaims): Promise<AuthenticatedUser> {
    const user = await this.accounts.findActive(claims.sub);
    if (!user) throw new HubException(HubErrorCode.UNAUTHENTICATED, 'The session is no longer valid. Sign in again.');
    return { id: user.id, username: user.username, role: user.role };
  }
}
