import { ApiProperty } from '@nestjs/swagger';
import { IsString, Length, Matches } from 'class-validator';

export class RegisterSiloDto {
  @ApiProperty({ example: 'Cleveland Clinic Foundation', description: 'Unique, 2–128 characters.' })
  @IsString()
  @Length(2, 128)
  @Matches(/^[\p{L}\p{N} .,'()&/-]+$/u, { message: "name may contain letters, digits, spaces and . , ' ( ) & / -" })
  name!: string;

  @ApiProperty({ example: 'it-security@hospital.example, +1 555 0100', description: 'Who to call at the silo.' })
  @IsString()
  @Length(3, 256)
  contact!: string;
}

export class ReasonDto {
  @ApiProperty({ example: 'Laptop with the agent key was stolen' })
  @IsString()
  @Length(3, 500)
  reason!: string;
}

export class EnrollDto {
  @ApiProperty({ description: 'The one-time token from the enrollment bundle.' })
  @IsString()
  @Length(20, 200)
  token!: string;

  @ApiProperty({ description: 'PKCS#10 certificate request, PEM, made by the agent with its own key.' })
  @IsString()
  @Length(100, 20_000)
  csrPem!: string;
}

export class RenewDto {
  @ApiProperty({ description: 'PKCS#10 certificate request, PEM, for a fresh key pair.' })
  @IsString()
  @Length(100, 20_000)
  csrPem!: string;
}
