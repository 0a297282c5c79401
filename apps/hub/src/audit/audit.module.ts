import { Global, Module, type DynamicModule } from '@nestjs/common';
import type { HubConfig } from '../config/config.schema';
import { HUB_CONFIG } from '../config/hub-config';
import { AuditCheckpointRepository } from './audit-checkpoint.repository';
import { AuditCheckpointService } from './audit-checkpoint.service';
import { AuditExportService } from './audit-export.service';
import { AuditLogService } from './audit-log.service';
import { AuditSigningKeyRepository } from './audit-signing-key.repository';
import { AuditSigningKeyService } from './audit-signing-key.service';
import { AuditTrail } from './audit-trail';
import { AuditVerificationService } from './audit-verification.service';
import { AuditController } from './audit.controller';
import { AuditRepository } from './audit.repository';
import { DatabaseAuditTrail } from './database-audit-trail';

/**
 * The tamper-evident audit log (docs/audit.md). Global: every module records through the `AuditTrail` port, and
 * studies use the checkpoint and export services at the end of a study.
 */
@Global()
@Module({})
export class AuditModule {
  static forRoot(config: HubConfig): DynamicModule {
    return {
      module: AuditModule,
      global: true,
      controllers: [AuditController],
      providers: [
        { provide: HUB_CONFIG, useValue: config },
        DatabaseAuditTrail,
        { provide: AuditTrail, useExisting: DatabaseAuditTrail },
        AuditRepository,
        AuditCheckpointRepository,
        AuditSigningKeyRepository,
        AuditSigningKeyService,
        AuditCheckpointService,
        AuditLogService,
        AuditVerificationService,
        AuditExportService,
      ],
      exports: [
        AuditTrail,
        DatabaseAuditTrail,
        AuditSigningKeyService,
        AuditCheckpointService,
        AuditLogService,
        AuditVerificationService,
        AuditExportService,
      ],
    };
  }
}
