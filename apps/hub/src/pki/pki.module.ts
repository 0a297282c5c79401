import { Module } from '@nestjs/common';
import { HubPkiService } from './hub-pki.service';

/**
 * The hub's certificate authority and TLS identity (docs/pki.md). The keys a first boot started early
 * (PkiKeyPrefetch) come from the composition root.
 */
@Module({
  providers: [HubPkiService],
  exports: [HubPkiService],
})
export class PkiModule {}
