import { Module } from '@nestjs/common';
import { JwtModule } from '@nestjs/jwt';
import { SESSION_KEY } from './session-key';
import { SessionWatch } from './session-watch.service';
import { SessionRepository } from './session.repository';
import { SessionsService } from './sessions.service';

/**
 * People's sessions (ADR 0010): the session store, refresh-token rotation, revocation, and the access tokens signed
 * with the session key (`SESSION_KEY`, given by the composition root). Below accounts (which revoke and start
 * sessions in their own transactions) and auth (which signs in); imports no feature. Exports JwtModule so that
 * sign-in issues and checks tokens with the same key.
 */
@Module({
  imports: [
    JwtModule.registerAsync({
      inject: [SESSION_KEY],
      useFactory: (sessionKey: string) => ({ secret: sessionKey, signOptions: { algorithm: 'HS256' } }),
    }),
  ],
  providers: [SessionRepository, SessionsService, SessionWatch],
  exports: [SessionsService, SessionWatch, JwtModule],
})
export class SessionsModule {}
