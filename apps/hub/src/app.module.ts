import { Logger, Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { JwtModule } from '@nestjs/jwt';
import { PassportModule } from '@nestjs/passport';
import { TerminusModule } from '@nestjs/terminus';
import { ThrottlerModule } from '@nestjs/throttler';
import { TypeOrmModule } from '@nestjs/typeorm';
import { LoggerModule } from 'nestjs-pino';
import { DataSource } from 'typeorm';
import { AccountsController } from './accounts/accounts.controller';
import { AccountsService } from './accounts/accounts.service';
import { LoginBackoffService } from './accounts/login-backoff.service';
import { AccountRenamesService } from './accounts/account-renames.service';
import { BlobStore } from './blobs/blob-store';
import { blobStoreFor } from './blobs/blob-store-selection.util';
import { integrityFailureReporter } from './audit/blob-integrity.util';
import { AuditTrail } from './audit/audit-trail';
import { HubPkiService } from './pki/hub-pki.service';
import { PkiKeyPrefetch } from './pki/pki-key-prefetch';
import { RoundsQueryService } from './rounds/rounds-query.service';
import { RoundCloser } from './rounds/round-closer.service';
import { RoundOpener } from './rounds/round-opener.service';
import { RoundsService } from './rounds/rounds.service';
import { OrphanBlobSweepService } from './rounds/orphan-blob-sweep.service';
import { UpdateAcceptanceService } from './rounds/update-acceptance.service';
import { SiloStudiesController } from './studies/silo-studies.controller';
import { StudiesController } from './studies/studies.controller';
import { StudiesService } from './studies/studies.service';
import { LegacyPlanStopsService } from './studies/legacy-plan-stops.service';
import { ModelExportService } from './studies/model-export.service';
import { ReportsController } from './reports/reports.controller';
import { SiloAuditController } from './reports/silo-audit.controller';
import { StudyReportService } from './reports/study-report.service';
import { PrivacyLedgerService } from './privacy/privacy-ledger.service';
import { SiloPrivacyController } from './privacy/silo-privacy.controller';
import { SiloPrivacyService } from './privacy/silo-privacy.service';
import { EnrollmentController } from './silos/enrollment.controller';
import { SiloSelfController } from './silos/silo-self.controller';
import { SilosController } from './silos/silos.controller';
import { SilosService } from './silos/silos.service';
import { RefusalRecorder } from './silos/refusal-recorder.service';
import { SiloPresence } from './silos/silo-presence.service';
import { AuditModule } from './audit/audit.module';
import { RATE_LIMIT_NAME, RateLimitStore } from './common/rate-limit.store';
import { AccessGuard } from './auth/access.guard';
import { AuthController } from './auth/auth.controller';
import { AuthService } from './auth/auth.service';
import { OidcController } from './auth/oidc.controller';
import { OidcProviderClient } from './auth/oidc-provider-client.service';
import { OidcSignInService } from './auth/oidc-sign-in.service';
import { JwtStrategy } from './auth/jwt.strategy';
import { LocalStrategy } from './auth/local.strategy';
import { SESSION_KEY } from './auth/session-key';
import { SessionsService } from './sessions/sessions.service';
import { SessionWatch } from './sessions/session-watch.service';
import { DataGeneration } from './database/data-generation';
import { ReadCacheModule } from './database/read-cache.module';
import { GlobalExceptionFilter } from './common/global-exception.filter';
import { loggerParams } from './common/logging';
import type { HubConfig } from './config/config.schema';
import { HUB_CONFIG } from './config/hub-config';
import { dataSourceOptions } from './database/data-source';
import { ENTITIES } from './entities';
import type { DatabaseEndpoint } from './database/embedded-postgres';
import { HealthController } from './health/health.controller';
import { MetricsController } from './metrics/metrics.controller';
import { MetricsService } from './metrics/metrics.service';
import { ConsoleModule } from './console/console.module';
import { StudyPagesController } from './studies/study-pages.controller';
import { StudyDraftsController } from './studies/study-drafts.controller';
import { StudyLifecycleService } from './studies/study-lifecycle.service';
import { StudyHistoryService } from './studies/study-history.service';
import { StudyDraftsService } from './studies/study-drafts.service';
import { SecAggModule } from './secagg/secagg.module';
import { NotificationsModule } from './notifications/notifications.module';
import { StudyEventsController } from './live/study-events.controller';
import { StudyLiveFeedService } from './live/study-live-feed.service';

export interface HubModuleOptions {
  config: HubConfig;
  database: DatabaseEndpoint;
  sessionKey: string;
  /** Keys a first boot started making while the database started (startHub); made on demand otherwise. */
  pkiKeys?: PkiKeyPrefetch;
}

@Module({})
export class AppModule {
  static forRoot({ config, database, sessionKey, pkiKeys }: HubModuleOptions): DynamicModule {
    // The embedded database has one writer, this process (ADR 0002): reads may be reused until a write commits.
    const generation = database.kind === 'embedded' ? new DataGeneration() : null;
    return {
      module: AppModule,
      imports: [
        LoggerModule.forRoot(loggerParams(config)),
        TypeOrmModule.forRoot(dataSourceOptions(database, { entities: ENTITIES, generation: generation ?? undefined })),
        TypeOrmModule.forFeature(ENTITIES),
        ReadCacheModule.forRoot(generation),
        PassportModule,
        JwtModule.register({ secret: sessionKey, signOptions: { algorithm: 'HS256' } }),
        // Counted in the database, so every replica shares the limits (issue 18, item 4).
        ThrottlerModule.forRootAsync({
          inject: [DataSource],
          useFactory: (db: DataSource) => ({
            throttlers: [{ name: RATE_LIMIT_NAME, ttl: 60_000, limit: config.loginRateLimit }],
            storage: new RateLimitStore(db),
          }),
        }),
        TerminusModule.forRoot({ logger: false }),
        AuditModule.forRoot(config),
        ConsoleModule,
        SecAggModule,
        NotificationsModule.forRoot(config),
      ],
      controllers: [
        AuthController,
        OidcController,
        AccountsController,
        SilosController,
        EnrollmentController,
        SiloSelfController,
        StudiesController,
        SiloPrivacyController,
        SiloStudiesController,
        ReportsController,
        SiloAuditController,
        HealthController,
        MetricsController,
        StudyEventsController,
        StudyPagesController,
        StudyDraftsController,
      ],
      providers: [
        { provide: HUB_CONFIG, useValue: config },
        { provide: SESSION_KEY, useValue: sessionKey },
        { provide: PkiKeyPrefetch, useValue: pkiKeys ?? new PkiKeyPrefetch() },
        { provide: APP_GUARD, useClass: AccessGuard },
        { provide: APP_FILTER, useClass: GlobalExceptionFilter },
        AccountsService,
        AccountRenamesService,
        LoginBackoffService,
        AuthService,
        OidcProviderClient,
        OidcSignInService,
        SessionsService,
        SessionWatch,
        JwtStrategy,
        LocalStrategy,
        MetricsService,
        HubPkiService,
        SilosService,
        RefusalRecorder,
        SiloPresence,
        StudiesService,
        StudyLifecycleService,
        StudyHistoryService,
        StudyDraftsService,
        LegacyPlanStopsService,
        RoundsService,
        RoundOpener,
        RoundCloser,
        UpdateAcceptanceService,
        OrphanBlobSweepService,
        RoundsQueryService,
        ModelExportService,
        StudyLiveFeedService,
        StudyReportService,
        PrivacyLedgerService,
        SiloPrivacyService,
        {
          provide: BlobStore,
          inject: [AuditTrail],
          // The filesystem or the S3 store, as TESSERA_BLOB_STORE says.
          useFactory: (audit: AuditTrail) =>
            blobStoreFor(config, integrityFailureReporter(audit, new Logger('BlobStore'))),
        },
      ],
    };
  }
}
