import { Module } from '@nestjs/common';
import { PrivacyModule } from '../privacy/privacy.module';
import { RoundsModule } from '../rounds/rounds.module';
import { LegacyPlanStopsRepository } from './legacy-plan-stops.repository';
import { LegacyPlanStopsService } from './legacy-plan-stops.service';
import { ModelExportService } from './model-export.service';
import { SiloStudiesController } from './silo-studies.controller';
import { StudiesController } from './studies.controller';
import { StudiesRepository } from './studies.repository';
import { StudiesService } from './studies.service';
import { StudyDraftsController } from './study-drafts.controller';
import { StudyDraftsRepository } from './study-drafts.repository';
import { StudyDraftsService } from './study-drafts.service';
import { StudyHistoryService } from './study-history.service';
import { StudyLifecycleService } from './study-lifecycle.service';
import { StudyPagesController } from './study-pages.controller';

/**
 * Studies: drafts, plans, approval, the lifecycle that starts and stops rounds, history and the model export; the
 * routes of administrators, auditors and silos on a study. Above rounds and privacy; exports StudiesService for
 * reports and the live feed.
 */
@Module({
  imports: [RoundsModule, PrivacyModule],
  controllers: [StudiesController, SiloStudiesController, StudyPagesController, StudyDraftsController],
  providers: [
    StudiesRepository,
    StudyDraftsRepository,
    LegacyPlanStopsRepository,
    StudiesService,
    StudyLifecycleService,
    StudyHistoryService,
    StudyDraftsService,
    LegacyPlanStopsService,
    ModelExportService,
  ],
  exports: [StudiesService],
})
export class StudiesModule {}
