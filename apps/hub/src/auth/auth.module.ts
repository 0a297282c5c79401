import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { PassportModule } from '@nestjs/passport';
import { AccountsModule } from '../accounts/accounts.module';
import { SessionsModule } from '../sessions/sessions.module';
import { SilosModule } from '../silos/silos.module';
import { AccessGuard } from './access.guard';
import { AuthController } from './auth.controller';
import { AuthRepository } from './auth.repository';
import { AuthService } from './auth.service';
import { JwtStrategy } from './jwt.strategy';
import { LocalStrategy } from './local.strategy';
import { OidcProviderClient } from './oidc-provider-client.service';
import { OidcSignInService } from './oidc-sign-in.service';
import { OidcController } from './oidc.controller';

/**
 * Who is calling: sign-in (password and OIDC), and the one global AccessGuard every route passes (people by session
 * token, silos by client certificate on their listener). Above accounts, silos and sessions, which it asks; no
 * feature imports it. Exports nothing.
 */
@Module({
  imports: [PassportModule, SessionsModule, AccountsModule, SilosModule],
  controllers: [AuthController, OidcController],
  providers: [
    { provide: APP_GUARD, useClass: AccessGuard },
    AuthService,
    AuthRepository,
    OidcProviderClient,
    OidcSignInService,
    JwtStrategy,
    LocalStrategy,
  ],
})
export class AuthModule {}
