import { Module } from '@nestjs/common';
import { PrivacyModule } from '../privacy/privacy.module';
import { RoundsModule } from '../rounds/rounds.module';
import { StudiesModule } from '../studies/studies.module';
import { ReportsController } from './reports.controller';
import { ReportsRepository } from './reports.repository';
import { SiloAuditController } from './silo-audit.controller';
import { StudyReportService } from './study-report.service';

/** A study's signed report (JSON and PDF) and the audit records a silo may read of its own studies. Exports nothing. */
@Module({
  imports: [StudiesModule, RoundsModule, PrivacyModule],
  controllers: [ReportsController, SiloAuditController],
  providers: [ReportsRepository, StudyReportService],
})
export class ReportsModule {}
