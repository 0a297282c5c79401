import { Body, Controller, Get, HttpCode, Post, Req, UseGuards } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { ThrottlerGuard } from '@nestjs/throttler';
import { SILO_API, type CertificateGrant } from '@tessera/protocol';
import type { Request } from 'express';
import { Access } from '../access/access.decorator';
import { HubPkiService } from '../pki/hub-pki.service';
import { EnrollDto } from './dto/silo.dto';
import { SiloCertificatesService } from './silo-certificates.service';
import { Endpoint } from '../openapi/endpoint.decorator';

/** Served only on the enrollment listener (TLS with the hub certificate; the agent has no certificate yet). */
@ApiTags('silo protocol')
@Access('enrollment')
@Controller()
export class EnrollmentController {
  constructor(
    private readonly certificates: SiloCertificatesService,
    private readonly pki: HubPkiService,
  ) {}

  /** The CA certificate; the agent checks its fingerprint against the bundle before it sends anything else. */
  @Get(SILO_API.caCertificate)
  @Endpoint({ summary: 'The silo CA certificate and its fingerprint', answer: { schema: 'CaCertificateView' } })
  ca(): { caCertificatePem: string; fingerprintSha256: string } {
    return {
      caCertificatePem: this.pki.certificateAuthority().certificatePem,
      fingerprintSha256: this.pki.caFingerprintSha256(),
    };
  }

  @Post(SILO_API.enroll)
  @HttpCode(200)
  @UseGuards(ThrottlerGuard)
  @Endpoint({
    summary: 'Enroll: trade the one-time token and a CSR for a client certificate',
    answer: { schema: 'CertificateGrant' },
  })
  enroll(@Body() dto: EnrollDto, @Req() req: Request): Promise<CertificateGrant> {
    return this.certificates.enroll(dto.token, dto.csrPem, req.socket.remoteAddress ?? 'unknown', {
      headers: req.headers,
      onEnd: (done) => req.res?.once('close', done),
    });
  }
}
