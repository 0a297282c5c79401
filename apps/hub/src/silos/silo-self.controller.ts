import { Body, Controller, Get, HttpCode, Post, Req } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { SILO_API, type CertificateGrant, type SiloSelf } from '@tessera/protocol';
import type { Request } from 'express';
import { Access } from '../access/access.decorator';
import { RenewDto } from './dto/silo.dto';
import { siloOf } from './silo-identity';
import { SiloCertificatesService } from './silo-certificates.service';
import { SilosService } from './silos.service';
import { Endpoint } from '../openapi/endpoint.decorator';

/** The calling silo's own routes; its identity comes from its client certificate only. */
@ApiTags('silo protocol')
@Access('silo')
@Controller()
export class SiloSelfController {
  constructor(
    private readonly silos: SilosService,
    private readonly certificates: SiloCertificatesService,
  ) {}

  @Get(SILO_API.me)
  @Endpoint({ summary: 'Who this silo is to the hub, and the hub’s time', answer: { schema: 'SiloSelf' } })
  async me(@Req() req: Request): Promise<SiloSelf> {
    const silo = siloOf(req);
    const view = await this.silos.get(silo.siloId);
    return {
      siloId: silo.siloId,
      name: silo.name,
      status: view.status,
      certificate: { serial: silo.certificateSerial, notAfter: silo.certificateNotAfter.toISOString() },
      hubTime: new Date().toISOString(),
    };
  }

  @Post(SILO_API.renew)
  @HttpCode(200)
  @Endpoint({ summary: 'Renew this silo’s certificate with a new key', answer: { schema: 'CertificateGrant' } })
  renew(@Body() dto: RenewDto, @Req() req: Request): Promise<CertificateGrant> {
    return this.certificates.renew(siloOf(req), dto.csrPem);
  }
}
