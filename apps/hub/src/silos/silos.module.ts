import { Module } from '@nestjs/common';
import { PkiModule } from '../pki/pki.module';
import { EnrollmentController } from './enrollment.controller';
import { RefusalRecorder } from './refusal-recorder.service';
import { SiloPresence } from './silo-presence.service';
import { SiloSelfController } from './silo-self.controller';
import { SilosController } from './silos.controller';
import { SilosService } from './silos.service';

/**
 * Silos: registration, enrollment and certificates (issued by the hub's CA), presence, and the refusals of
 * unknown or revoked certificates. Exports what the access guard (auth/) asks of a client certificate.
 */
@Module({
  imports: [PkiModule],
  controllers: [SilosController, EnrollmentController, SiloSelfController],
  providers: [SilosService, RefusalRecorder, SiloPresence],
  exports: [SilosService, RefusalRecorder],
})
export class SilosModule {}
