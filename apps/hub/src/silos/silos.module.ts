import { Module } from '@nestjs/common';
import { PkiModule } from '../pki/pki.module';
import { EnrollmentController } from './enrollment.controller';
import { RefusalRecorder } from './refusal-recorder.service';
import { SiloCertificatesService } from './silo-certificates.service';
import { SiloPresence } from './silo-presence.service';
import { SiloRefusalsRepository } from './silo-refusals.repository';
import { SiloSelfController } from './silo-self.controller';
import { SilosController } from './silos.controller';
import { SilosRepository } from './silos.repository';
import { SilosService } from './silos.service';

/**
 * Silos: registration, enrollment and certificates (issued by the hub's CA), presence, and the refusals of
 * unknown or revoked certificates. Exports what the access guard (auth/) asks of a client certificate, and SilosService
 * (the composition root tells it the listeners' URLs). The repositories stay inside.
 */
@Module({
  imports: [PkiModule],
  controllers: [SilosController, EnrollmentController, SiloSelfController],
  providers: [
    SilosRepository,
    SiloRefusalsRepository,
    SilosService,
    SiloCertificatesService,
    RefusalRecorder,
    SiloPresence,
  ],
  exports: [SilosService, SiloCertificatesService, RefusalRecorder],
})
export class SilosModule {}
