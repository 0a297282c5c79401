import { Body, Controller, Get, HttpCode, Param, ParseUUIDPipe, Post, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { Access } from '../access/access.decorator';
import { actorOf, type AuthenticatedRequest } from '../sessions/current-user';
import { ReadCache } from '../database/read-cache';
import { ReasonDto, RegisterSiloDto } from './dto/silo.dto';
import { SiloCertificatesService } from './silo-certificates.service';
import { SilosService, type CertificateView, type EnrollmentIssued, type SiloView } from './silos.service';
import { Endpoint } from '../openapi/endpoint.decorator';

/** Administrators register, re-enroll, suspend and revoke silos; auditors may read. */
@ApiTags('silos')
@ApiBearerAuth()
@Controller('api/silos')
export class SilosController {
  constructor(
    private readonly silos: SilosService,
    private readonly certificates: SiloCertificatesService,
    private readonly cache: ReadCache,
  ) {}

  @Access('admin', 'auditor')
  @Get()
  @Endpoint({ summary: 'List silos with their agents’ presence', answer: { schema: 'SiloView', list: true } })
  list(): Promise<SiloView[]> {
    // The agents' open requests live in memory: each answer gets them fresh over the cached rows.
    return this.cache.read('silos', () => this.silos.list()).then((views) => views.map((v) => this.silos.live(v)));
  }

  @Access('admin', 'auditor')
  @Get(':id')
  @Endpoint({ summary: 'Read a silo with its certificates', answer: { schema: 'SiloDetailView' } })
  get(@Param('id', new ParseUUIDPipe()) id: string): Promise<SiloView & { certificates: CertificateView[] }> {
    return this.cache.read(`silo:${id}`, () => this.silos.get(id)).then((view) => this.silos.live(view));
  }

  /** Registers a silo and returns its one-time enrollment bundle (shown once: the hub keeps only a hash). */
  @Access('admin')
  @Post()
  @Endpoint({
    summary: 'Register a silo and issue its one-time enrollment bundle',
    answer: { schema: 'EnrollmentIssued' },
  })
  register(@Body() dto: RegisterSiloDto, @Req() req: AuthenticatedRequest): Promise<EnrollmentIssued> {
    return this.silos.register(dto, actorOf(req));
  }

  /** A new bundle for an existing silo; revokes every certificate it holds. */
  @Access('admin')
  @Post(':id/enrollment')
  @Endpoint({
    summary: 'Issue a new enrollment bundle (revokes the silo’s certificates)',
    answer: { schema: 'EnrollmentIssued' },
  })
  reEnroll(@Param('id', new ParseUUIDPipe()) id: string, @Req() req: AuthenticatedRequest): Promise<EnrollmentIssued> {
    return this.silos.reEnroll(id, actorOf(req));
  }

  @Access('admin')
  @Post(':id/suspend')
  @HttpCode(200)
  @Endpoint({ summary: 'Suspend a silo: every request of its agent is refused', answer: { schema: 'SiloView' } })
  suspend(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Body() dto: ReasonDto,
    @Req() req: AuthenticatedRequest,
  ): Promise<SiloView> {
    return this.silos.suspend(id, dto.reason, actorOf(req));
  }

  @Access('admin')
  @Post(':id/resume')
  @HttpCode(200)
  @Endpoint({ summary: 'Resume a suspended silo', answer: { schema: 'SiloView' } })
  resume(@Param('id', new ParseUUIDPipe()) id: string, @Req() req: AuthenticatedRequest): Promise<SiloView> {
    return this.silos.resume(id, actorOf(req));
  }

  @Access('admin')
  @Post(':id/certificates/:serial/revoke')
  @HttpCode(200)
  @Endpoint({ summary: 'Revoke one of a silo’s certificates', answer: { schema: 'CertificateView' } })
  revoke(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Param('serial') serial: string,
    @Body() dto: ReasonDto,
    @Req() req: AuthenticatedRequest,
  ): Promise<CertificateView> {
    return this.certificates.revokeCertificate(id, serial.toLowerCase(), dto.reason, actorOf(req));
  }
}
