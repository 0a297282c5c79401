import { Module } from '@nestjs/common';
import { PrivacyLedgerService } from './privacy-ledger.service';
import { PrivacyRepository } from './privacy.repository';
import { SiloPrivacyController } from './silo-privacy.controller';
import { SiloPrivacyService } from './silo-privacy.service';

/**
 * The privacy ledger (what every study has spent of each silo's budget) and a silo's view of it. Below rounds and
 * studies, which charge and read the ledger.
 */
@Module({
  controllers: [SiloPrivacyController],
  providers: [PrivacyRepository, PrivacyLedgerService, SiloPrivacyService],
  exports: [PrivacyLedgerService],
})
export class PrivacyModule {}
