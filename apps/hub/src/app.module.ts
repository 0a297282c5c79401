import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import { TypeOrmModule } from '@nestjs/typeorm';
import { LoggerModule } from 'nestjs-pino';
import pino, { type Logger } from 'pino';
import { DataSource } from 'typeorm';
import { AccountsModule } from './accounts/accounts.module';
import { AuditModule } from './audit/audit.module';
import { AuthModule } from './auth/auth.module';
import { GlobalExceptionFilter } from './common/global-exception.filter';
import { hubLogger, loggerParams } from './common/logging';
import { RATE_LIMIT_NAME, RateLimitStore } from './common/rate-limit.store';
import { ConsoleModule } from './console/console.module';
import { DataGeneration } from './database/data-generation';
import { dataSourceOptions } from './database/data-source';
import type { DatabaseEndpoint } from './database/embedded-postgres';
import { ReadCacheModule } from './database/read-cache.module';
import { ENTITIES } from './entities';
import { HealthModule } from './health/health.module';
import { HubBootModule, type HubBootValues } from './hub-boot.module';
import { LiveModule } from './live/live.module';
import { MetricsModule } from './metrics/metrics.module';
import { NotificationsModule } from './notifications/notifications.module';
import { PkiModule } from './pki/pki.module';
import { PrivacyModule } from './privacy/privacy.module';
import { ReportsModule } from './reports/reports.module';
import { RoundsModule } from './rounds/rounds.module';
import { SecAggModule } from './secagg/secagg.module';
import { SessionsModule } from './sessions/sessions.module';
import { SilosModule } from './silos/silos.module';
import { StudiesModule } from './studies/studies.module';

export interface HubModuleOptions extends HubBootValues {
  database: DatabaseEndpoint;
  /**
   * The hub's root logger (hub.ts makes it, with an asynchronous destination it flushes when the hub stops). Without
   * one (commands, the API document), lines go to stdout synchronously, so a command's `process.exit` loses none.
   */
  logger?: Logger;
}

/**
 * The hub: infrastructure (logging, the database and its read cache, rate limits, the error filter, what one boot
 * hands every module) composed with the feature modules. Each feature module owns its controllers and providers
 * and imports only modules of folders below its own (docs/adr/0020-hub-folder-layers.md); the list below names
 * every feature, so a module no other imports is still served.
 */
@Module({})
export class AppModule {
  static forRoot({ config, database, sessionKey, pkiKeys, logger }: HubModuleOptions): DynamicModule {
    const root = logger ?? hubLogger(config, pino.destination({ dest: 1, sync: true }));
    // The embedded database has one writer, this process (ADR 0002): reads may be reused until a write commits.
    const generation = database.kind === 'embedded' ? new DataGeneration() : null;
    return {
      module: AppModule,
      imports: [
        LoggerModule.forRoot(loggerParams(root)),
        TypeOrmModule.forRoot(dataSourceOptions(database, { entities: ENTITIES, generation: generation ?? undefined })),
        ReadCacheModule.forRoot(generation),
        // Counted in the database, so every replica shares the limits (issue 18, item 4).
        ThrottlerModule.forRootAsync({
          inject: [DataSource],
          useFactory: (db: DataSource) => ({
            throttlers: [{ name: RATE_LIMIT_NAME, ttl: 60_000, limit: config.loginRateLimit }],
            storage: new RateLimitStore(db),
          }),
        }),
        HubBootModule.forRoot({ config, sessionKey, pkiKeys }),
        AuditModule.forRoot(config),
        // Features, from the top layer down.
        AuthModule,
        ReportsModule,
        LiveModule,
        StudiesModule,
        RoundsModule,
        SecAggModule,
        PrivacyModule,
        AccountsModule,
        SilosModule,
        PkiModule,
        SessionsModule,
        NotificationsModule.forRoot(config),
        HealthModule,
        MetricsModule,
        ConsoleModule,
      ],
      providers: [{ provide: APP_FILTER, useClass: GlobalExceptionFilter }],
    };
  }
}
