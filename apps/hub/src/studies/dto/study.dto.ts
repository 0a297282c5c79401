import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsObject, IsOptional, IsString, Length, Matches } from 'class-validator';

/** The plan is validated as a whole by the shared schema in @tessera/protocol (every problem reported at once). */
export class StudyPlanDto {
  // The plan's schema is the shared zod schema itself (a component of the API document, z.toJSONSchema).
  @ApiProperty({ allOf: [{ $ref: '#/components/schemas/StudyPlan' }] })
  @IsObject()
  plan!: Record<string, unknown>;
}

export class StopStudyDto {
  @ApiProperty({ example: 'The steering committee paused the study.' })
  @IsString()
  @Length(3, 500)
  reason!: string;
}

export class DecisionDto {
  @ApiProperty({ description: 'The plan hash the steward approves or rejects, exactly as the agent computed it.' })
  @Matches(/^[0-9a-f]{64}$/, { message: 'planHash must be 64 lowercase hex digits' })
  planHash!: string;

  @ApiProperty({ enum: ['approve', 'reject'] })
  @IsIn(['approve', 'reject'])
  decision!: 'approve' | 'reject';

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Length(1, 1000)
  reason?: string;
}
