import { createSecretKey } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { ExtractJwt, Strategy } from 'passport-jwt';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { ReadCache } from '../database/read-cache';
import { SESSION_KEY } from '../sessions/session-key';
import type { AuthenticatedUser, SessionClaims } from '../sessions/authenticated-user';
import { SessionsService } from '../sessions/sessions.service';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Verifies the bearer access token, then re-reads its session and account, so a sign-out, a revocation, a disabled
 * account or a changed role takes effect on the next request, not when the token expires.
 */
@Injectable()
export class JwtStrategy extends PassportStrategy(Strategy, 'jwt') {
  constructor(
    private readonly sessions: SessionsService,
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
    // A token from before sessions existed has no `sid`: it is refused like a revoked one.
    if (typeof claims.sid !== 'string' || !UUID.test(claims.sid)) throw ended();
    // Reused only while no write has committed since it was read: every revocation, disabling or role change is one.
    const session = await this.cache.read(`session:${claims.sid}`, () => this.sessions.active(claims.sid));
    if (!session || session.userId !== claims.sub) throw ended();
    return {
      id: session.userId,
      username: session.username,
      role: session.role,
      mustChangePassword: session.mustChangePassword,
      sessionId: session.sessionId,
    };
  }
}

function ended(): HubException {
  return new HubException(HubErrorCode.UNAUTHENTICATED, 'The session is no longer valid. Sign in again.');
}
