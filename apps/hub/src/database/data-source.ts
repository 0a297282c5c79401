import type { DataSourceOptions } from 'typeorm';
import { Initial1763800000000 } from './migrations/1763800000000-initial';
import { SiloIdentity1763800100000 } from './migrations/1763800100000-silo-identity';
import { Studies1763800300000 } from './migrations/1763800300000-studies';
import { PrivacyLedger1763800400000 } from './migrations/1763800400000-privacy-ledger';
import { CertificateLineage1763800550000 } from './migrations/1763800550000-certificate-lineage';
import { PrivacyCharges1763800600000 } from './migrations/1763800600000-privacy-charges';
import { LegacyStudyPlans1763800700000 } from './migrations/1763800700000-legacy-study-plans';
import { LoginBackoff1763800810000 } from './migrations/1763800810000-login-backoff';
import { AuditLog1763800200000 } from './migrations/1763800200000-audit-log';
import { RoundCloseClaim1763800900000 } from './migrations/1763800900000-round-close-claim';
import { Sessions1763801000000 } from './migrations/1763801000000-sessions';
import { SiloPresence1763801150000 } from './migrations/1763801150000-silo-presence';
import { SecureAggregation1763801300000 } from './migrations/1763801300000-secure-aggregation';
import { RateLimits1763801400000 } from './migrations/1763801400000-rate-limits';
import { Webhooks1763801500000 } from './migrations/1763801500000-webhooks';
import { StudyPages1763801687342 } from './migrations/1763801687342-study-pages';
import { Personalization1763801953917 } from './migrations/1763801953917-personalization';
import { PersonalizationEvaluations1763801961542 } from './migrations/1763801961542-personalization-evaluations';
import { ScaffoldControlVariate1763802100000 } from './migrations/1763802100000-scaffold-control-variate';
import { OidcIdentities1763802200000 } from './migrations/1763802200000-oidc-identities';
import type { DatabaseEndpoint } from './embedded-postgres';
import { watchedClientClass, type DataGeneration } from './data-generation';

/**
 * Every migration, listed explicitly (no globs: the same list works from sources and from dist). The entities are the
 * application's, listed at its composition root (../entities.ts): this folder stands below the features.
 */
export const MIGRATIONS = [
  Initial1763800000000,
  SiloIdentity1763800100000,
  AuditLog1763800200000,
  Studies1763800300000,
  PrivacyLedger1763800400000,
  CertificateLineage1763800550000,
  PrivacyCharges1763800600000,
  LegacyStudyPlans1763800700000,
  LoginBackoff1763800810000,
  RoundCloseClaim1763800900000,
  Sessions1763801000000,
  SiloPresence1763801150000,
  SecureAggregation1763801300000,
  RateLimits1763801400000,
  Webhooks1763801500000,
  StudyPages1763801687342,
  Personalization1763801953917,
  PersonalizationEvaluations1763801961542,
  ScaffoldControlVariate1763802100000,
  OidcIdentities1763802200000,
];

/** What the application adds to the database's options. */
export interface DataSourceUse {
  /** The entities its repositories map (../entities.ts); none for migrations, which write SQL. */
  entities?: NonNullable<DataSourceOptions['entities']>;
  /**
   * Every pooled connection reports the statements it sends (DataGeneration), so reads can be reused until data
   * changes; the hub passes it on the embedded database only.
   */
  generation?: DataGeneration;
}

/** TypeORM's options for the database. */
export function dataSourceOptions(
  db: DatabaseEndpoint,
  { entities = [], generation }: DataSourceUse = {},
): DataSourceOptions {
  return {
    type: 'postgres',
    // The embedded database listens on a Unix socket only: node-postgres takes a directory as `host` and connects
    // to `<host>/.s.PGSQL.<port>` (no TCP, ADR 0002).
    ...(db.kind === 'external'
      ? { url: db.url }
      : { host: db.socketDirectory, port: db.socketPort, username: 'postgres', database: 'postgres' }),
    entities,
    migrations: MIGRATIONS,
    migrationsTableName: 'migrations',
    synchronize: false,
    migrationsRun: false,
    logging: false,
    extra: { max: db.poolSize, ...(generation ? { Client: watchedClientClass(generation) } : {}) },
  };
}
