import { Controller, Get, Param, ParseUUIDPipe } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import type { SiloPrivacyView } from '@tessera/protocol';
import { Access } from '../access/access.decorator';
import { SiloPrivacyService } from './silo-privacy.service';
import { Endpoint } from '../openapi/endpoint.decorator';

/** One silo's privacy spend across studies (admin, auditor). */
@ApiTags('privacy')
@ApiBearerAuth()
@Controller('api/silos')
export class SiloPrivacyController {
  constructor(private readonly privacy: SiloPrivacyService) {}

  /**
   * Every study the silo was invited to: ε spent on its data (the hub's figure), the study's planned and target ε,
   * δ and unit, and the total by basic composition (Σε at Σδ, an upper bound).
   */
  @Access('admin', 'auditor')
  @Get(':id/privacy')
  @Endpoint({ summary: 'What every study has spent on one silo’s data', answer: { schema: 'SiloPrivacyView' } })
  ofSilo(@Param('id', new ParseUUIDPipe()) id: string): Promise<SiloPrivacyView> {
    return this.privacy.ofSilo(id);
  }
}
