import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsIn, IsOptional, IsString, Length, Matches } from 'class-validator';
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from '../account-rules.util';
import { ROLES, type Role } from '../user.entity';

export class CreateUserDto {
  @ApiProperty({
    example: 'alice',
    description: '3–64 characters: letters, digits, dot, dash, underscore. Unique whatever the letter case.',
  })
  @IsString()
  @Length(3, 64)
  @Matches(/^[A-Za-z0-9._-]+$/, { message: 'username may contain only letters, digits, dot, dash and underscore' })
  username!: string;

  @ApiProperty({ minLength: MIN_PASSWORD_LENGTH, maxLength: MAX_PASSWORD_LENGTH })
  @IsString()
  @Length(MIN_PASSWORD_LENGTH, MAX_PASSWORD_LENGTH, {
    message: `password must be ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters long`,
  })
  password!: string;

  @ApiProperty({ enum: ROLES })
  @IsIn(ROLES)
  role!: Role;

  @ApiPropertyOptional({
    default: false,
    description:
      'The password is temporary: the first sign-in may only change it. The console always sets it; scripts that ' +
      'provision an account for themselves leave it out.',
  })
  @IsOptional()
  @IsBoolean()
  mustChangePassword?: boolean;
}
