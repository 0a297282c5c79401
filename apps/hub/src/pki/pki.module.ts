import { Module } from '@nestjs/common';
import { HubPkiService } from './hub-pki.service';
import { PkiRepository } from './pki.repository';

/**
 * The hub's certificate authority and TLS identity (docs/pki.md). The keys a first boot started early
 * (PkiKeyPrefetch) come from the composition root.
 */
@Module({
  providers: [HubPkiService, PkiRepository],
  exports: [HubPkiService],
})
export class PkiModule {}
