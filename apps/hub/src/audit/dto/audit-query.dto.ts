import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsISO8601, IsOptional, IsString, IsUUID, Length, Matches, Max, Min } from 'class-validator';

/** Filters of GET /api/audit/events and /api/audit/events.csv (all optional, combined with AND). */
export class AuditEventsFilterDto {
  @ApiPropertyOptional({ description: 'Records at or after this instant (ISO 8601 with a time zone).' })
  @IsOptional()
  @IsISO8601({ strict: true, strictSeparator: true }, { message: 'from must be an ISO 8601 date-time' })
  @Matches(/(Z|[+-]\d{2}:?\d{2})$/, { message: 'from must name its time zone (Z or +hh:mm)' })
  from?: string;

  @ApiPropertyOptional({ description: 'Records before this instant (exclusive; ISO 8601 with a time zone).' })
  @IsOptional()
  @IsISO8601({ strict: true, strictSeparator: true }, { message: 'to must be an ISO 8601 date-time' })
  @Matches(/(Z|[+-]\d{2}:?\d{2})$/, { message: 'to must name its time zone (Z or +hh:mm)' })
  to?: string;

  @ApiPropertyOptional({ description: 'Actor id (user, silo or system component) or actor name (username).' })
  @IsOptional()
  @IsString()
  @Length(1, 128)
  actor?: string;

  @ApiPropertyOptional({ description: 'Action prefix, e.g. `silo.` for every silo action.', example: 'silo.' })
  @IsOptional()
  @Matches(/^\S{1,128}$/, { message: 'action must be 1 to 128 characters without spaces' })
  action?: string;

  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID('all')
  studyId?: string;

  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID('all')
  siloId?: string;

  @ApiPropertyOptional({ description: 'Case-insensitive text searched in the action and the details.' })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  q?: string;
}

export const MAX_PAGE = 500;
/**
 * Largest seq a cursor may name: 2^53 − 1. A seq is a bigint, but a cursor is read as a JavaScript number, which
 * holds integers exactly only up to here; a larger one (99999999999999999999) became 1e20, passed `@IsInt`, and
 * the database refused it as out of range for bigint: 500 before this bound.
 */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;

/** GET /api/audit/events: filters and keyset paging by seq. */
export class AuditEventsQueryDto extends AuditEventsFilterDto {
  @ApiPropertyOptional({ minimum: 1, maximum: MAX_PAGE, default: 100 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(MAX_PAGE)
  limit?: number;

  @ApiPropertyOptional({ description: 'The nextCursor of the previous page (a seq).', maximum: MAX_SEQ })
  @IsOptional()
  @Type(() => Number)
  @IsInt({ message: 'cursor must be a whole number' })
  @Min(0)
  @Max(MAX_SEQ, { message: `cursor must not be greater than ${MAX_SEQ}` })
  cursor?: number;

  @ApiPropertyOptional({ enum: ['asc', 'desc'], default: 'desc', description: 'desc: newest first.' })
  @IsOptional()
  @IsIn(['asc', 'desc'])
  order?: 'asc' | 'desc';
}

/** GET /api/audit/checkpoints: checkpoints after a seq, oldest first. */
export class AuditCheckpointsQueryDto {
  @ApiPropertyOptional({ description: 'Only checkpoints after this seq.', default: 0, maximum: MAX_SEQ })
  @IsOptional()
  @Type(() => Number)
  @IsInt({ message: 'after must be a whole number' })
  @Min(0)
  @Max(MAX_SEQ, { message: `after must not be greater than ${MAX_SEQ}` })
  after?: number;

  @ApiPropertyOptional({ minimum: 1, maximum: MAX_PAGE, default: 100 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(MAX_PAGE)
  limit?: number;
}
