import { ApiProperty } from '@nestjs/swagger';
import { IsString, Length } from 'class-validator';
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from '../../accounts/account-rules.util';

export class ChangePasswordDto {
  @ApiProperty({ description: 'The password the person signs in with now.' })
  @IsString()
  @Length(1, MAX_PASSWORD_LENGTH, { message: `currentPassword must be 1 to ${MAX_PASSWORD_LENGTH} characters long` })
  currentPassword!: string;

  @ApiProperty({ minLength: MIN_PASSWORD_LENGTH, maxLength: MAX_PASSWORD_LENGTH })
  @IsString()
  @Length(MIN_PASSWORD_LENGTH, MAX_PASSWORD_LENGTH, {
    message: `newPassword must be ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters long`,
  })
  newPassword!: string;
}
