import { Module } from '@nestjs/common';
import { PrivacyModule } from '../privacy/privacy.module';
import { SecAggModule } from '../secagg/secagg.module';
import { OrphanBlobSweepService } from './orphan-blob-sweep.service';
import { RoundAggregator } from './round-aggregator.service';
import { RoundCloser } from './round-closer.service';
import { RoundOpener } from './round-opener.service';
import { RoundsQueryService } from './rounds-query.service';
import { RoundViewsRepository } from './round-views.repository';
import { RoundsRepository } from './rounds.repository';
import { RoundsService } from './rounds.service';
import { UpdateAcceptanceService } from './update-acceptance.service';

/**
 * The round engine: opening rounds, accepting updates and reports, closing and aggregating. Charges the privacy
 * ledger and drives secure aggregation (both below it). Its routes are the studies' (studies/ sits above rounds), so
 * it has no controller; it exports what studies, reports and the live feed call.
 */
@Module({
  imports: [PrivacyModule, SecAggModule],
  providers: [
    RoundsRepository,
    RoundViewsRepository,
    RoundsService,
    RoundOpener,
    RoundCloser,
    RoundAggregator,
    UpdateAcceptanceService,
    OrphanBlobSweepService,
    RoundsQueryService,
  ],
  exports: [RoundsService, RoundOpener, RoundsQueryService],
})
export class RoundsModule {}
