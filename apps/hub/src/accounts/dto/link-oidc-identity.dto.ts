import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, IsUrl, Length } from 'class-validator';

/** The identity at the identity provider an account signs in with (ADR 0010). */
export class LinkOidcIdentityDto {
  @ApiProperty({
    description:
      'The provider’s `sub` for the person (its administrators can look it up; a refused sign-in records it in the audit log).',
  })
  @IsString()
  @Length(1, 255)
  subject!: string;

  @ApiPropertyOptional({ description: 'The provider’s issuer URL; defaults to TESSERA_OIDC_ISSUER.' })
  @IsOptional()
  @IsUrl({ require_tld: false, protocols: ['http', 'https'], require_protocol: true })
  issuer?: string;
}
