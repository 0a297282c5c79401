import { Inject, Injectable } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { HUB_CONFIG } from '../config/hub-config';
import type { HubConfig } from '../config/config.schema';
import type { AuthenticatedUser, SessionClaims } from './authenticated-user';
import type { SessionDto } from './dto/login.dto';

/** Issues short-lived bearer session tokens (ADR 0001 explains why tokens rather than cookies). */
@Injectable()
export class AuthService {
  constructor(
    private readonly jwt: JwtService,
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
  ) {}

  async issueSession(user: AuthenticatedUser): Promise<SessionDto> {
    const claims: SessionClaims = { sub: user.id, username: user.username, role: user.role };
    const accessToken = await this.jwt.signAsync(claims, { expiresIn: this.config.sessionTtlSeconds });
    return { accessToken, expiresIn: this.config.sessionTtlSeconds, role: user.role, username: user.username };
  }
}
