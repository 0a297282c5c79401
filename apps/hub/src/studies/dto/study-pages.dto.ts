import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsInt, IsObject, IsOptional, IsString, IsUUID, Length, Max, Min } from 'class-validator';
import { ARCHIVED_FILTERS, type ArchivedFilter } from '../studies.service';

export class PauseStudyDto {
  @ApiProperty({ example: 'A site is migrating its records; resume when it is back.' })
  @IsString()
  @Length(3, 500)
  reason!: string;
}

export class StudyListQueryDto {
  @ApiPropertyOptional({
    enum: ARCHIVED_FILTERS,
    description: 'exclude (default): archived studies are left out; include: all; only: archived ones.',
  })
  @IsOptional()
  @IsIn(ARCHIVED_FILTERS, { message: `archived must be one of ${ARCHIVED_FILTERS.join(', ')}` })
  archived?: ArchivedFilter;
}

export class StudyDraftDto {
  @ApiProperty({
    description: "The study wizard's form as typed (the console's PlanDraft).",
    type: 'object',
    additionalProperties: true,
  })
  @IsObject()
  form!: Record<string, unknown>;

  @ApiProperty({ description: 'The wizard step the draft was at (0 = the first).', minimum: 0, maximum: 99 })
  @IsInt()
  @Min(0)
  @Max(99)
  step!: number;

  @ApiPropertyOptional({ description: 'A draft of a new plan version of this study (create only).', format: 'uuid' })
  @IsOptional()
  @IsUUID('all', { message: 'studyId must be a UUID' })
  studyId?: string;
}
