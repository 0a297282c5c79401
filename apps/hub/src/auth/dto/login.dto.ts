import { ApiProperty } from '@nestjs/swagger';
import { IsString, Length } from 'class-validator';

export class LoginDto {
  @ApiProperty({ example: 'admin' })
  @IsString()
  @Length(1, 64)
  username!: string;

  @ApiProperty()
  @IsString()
  @Length(1, 256)
  password!: string;
}

export class SessionDto {
  @ApiProperty({ description: 'Bearer token for the Authorization header.' })
  accessToken!: string;

  @ApiProperty({ description: 'Seconds until the token expires.' })
  expiresIn!: number;

  @ApiProperty({ enum: ['admin', 'auditor'] })
  role!: string;

  @ApiProperty()
  username!: string;
}
