import { createSecretKey } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { ExtractJwt, Strategy } from 'passport-jwt';
import { AccountsService } from '../accounts/accounts.service';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { ReadCache } from '../database/read-cache';
import { SESSION_KEY } from './session-key';
import type { AuthenticatedUser, SessionClaims } from './authenticated-user';

/** Verifies the bearer session token, then re-reads the account so a disabled user or changed role takes effect at once. */
@Injectable()
export class JwtStrategy extends PassportStrategy(Strategy, 'jwt') {
  constructor(
    private readonly accounts: AccountsService,
    private readonly cache: ReadCache,
    @Inject(SESSION_KEY) key: string,
  ) {
    super({
      jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(),
      // A KeyObject, made once: given a string, jsonwebtoken first tries (and fails) to parse it as a public key on
      // every request, then makes the HMAC key; that attempt cost about a tenth of each console read.
      // passport-jwt's types predate KeyObject; it hands the value to jsonwebtoken unchanged.
      secretOrKey: createSecretKey(Buffer.from(key, 'utf8')) as unknown as Buffer,
      algorithms: ['HS256'],
      ignoreExpiration: false,
    });
  }

  async validate(claims: SessionClaims): Promise<AuthenticatedUser> {
    // Reused only while no write has committed since it was read: a disabled account or a changed role is a write.
    const user = await this.cache.read(`account:${claims.sub}`, () => this.accounts.findActive(claims.sub));
    if (!user) throw new HubException(HubErrorCode.UNAUTHENTICATED, 'The session is no longer valid. Sign in again.');
    return { id: user.id, username: user.username, role: user.role };
  }
}
