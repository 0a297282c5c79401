import { ApiProperty } from '@nestjs/swagger';

/**
 * What sign-in, refresh and a password change answer. The refresh token is never in the body: it travels only in the
 * httpOnly cookie `tessera_refresh` (ADR 0010), out of reach of the page's scripts.
 */
export class SessionDto {
  @ApiProperty({ description: 'Bearer token for the Authorization header.' })
  accessToken!: string;

  @ApiProperty({ description: 'Seconds until the access token expires; refresh before then (POST /api/auth/refresh).' })
  expiresIn!: number;

  @ApiProperty({ enum: ['admin', 'auditor'] })
  role!: string;

  @ApiProperty()
  username!: string;

  @ApiProperty({ description: 'When the session ends whatever happens (ISO 8601): sign in again then.' })
  sessionExpiresAt!: string;

  @ApiProperty({ description: 'The session ends this many seconds after its last refresh.' })
  idleTimeoutSeconds!: number;

  @ApiProperty({
    description: 'True after an administrator set a temporary password: only POST /api/auth/password is served.',
  })
  passwordChangeRequired!: boolean;
}
