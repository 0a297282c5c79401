import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, Max, Min } from 'class-validator';
import { MAX_SEQ } from '../../audit/dto/audit-query.dto';

/** GET /api/studies/:id/report.{json,pdf,csv}: which chain head the report covers. */
export class ReportQueryDto {
  @ApiPropertyOptional({
    description:
      'Cover the audit chain up to this record (a seq an earlier download named in x-audit-head-seq), so two ' +
      'downloads describe the same head. Default: the current head. 409 when the study changed after it.',
    minimum: 1,
    maximum: MAX_SEQ,
  })
  @IsOptional()
  @Type(() => Number)
  @IsInt({ message: 'upTo must be a whole number (a record seq)' })
  @Min(1, { message: 'upTo must be at least 1' })
  @Max(MAX_SEQ, { message: `upTo must not be greater than ${MAX_SEQ}` })
  upTo?: number;
}
