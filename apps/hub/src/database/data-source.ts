import type { DataSourceOptions } from 'typeorm';
import { UserEntity } from '../accounts/user.entity';
import { HubPkiEntity } from '../pki/hub-pki.entity';
import { EnrollmentTokenEntity } from '../silos/enrollment-token.entity';
import { SiloCertificateEntity } from '../silos/silo-certificate.entity';
import { SiloEntity } from '../silos/silo.entity';
import { Initial1763800000000 } from './migrations/1763800000000-initial';
import { SiloIdentity1763800100000 } from './migrations/1763800100000-silo-identity';
import { Studies1763800300000 } from './migrations/1763800300000-studies';
import { PrivacyLedger1763800400000 } from './migrations/1763800400000-privacy-ledger';
import { CertificateLineage1763800550000 } from './migrations/1763800550000-certificate-lineage';
import { PrivacyCharges1763800600000 } from './migrations/1763800600000-privacy-charges';
import { LegacyStudyPlans1763800700000 } from './migrations/1763800700000-legacy-study-plans';
import { LoginBackoff1763800810000 } from './migrations/1763800810000-login-backoff';
import { PrivacyLedgerEntity } from '../privacy/privacy-ledger.entity';
import { RoundParticipantEntity } from '../rounds/round-participant.entity';
import { RoundEntity } from '../rounds/round.entity';
import { StudyDecisionEntity } from '../studies/study-decision.entity';
import { StudyPlanVersionEntity } from '../studies/study-plan-version.entity';
import { StudyEntity } from '../studies/study.entity';
import { AuditCheckpointEntity } from '../audit/audit-checkpoint.entity';
import { AuditRecordEntity } from '../audit/audit-record.entity';
import { AuditSigningKeyEntity } from '../audit/audit-signing-key.entity';
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
import { StudyDraftEntity } from '../studies/study-draft.entity';
import { WebhookAttemptEntity, WebhookDeliveryEntity } from '../notifications/webhook-delivery.entity';
import { WebhookEndpointEntity } from '../notifications/webhook-endpoint.entity';
import { SecAggMessageEntity } from '../secagg/secagg-message.entity';
import { SecAggSessionEntity } from '../secagg/secagg-session.entity';
import type { DatabaseEndpoint } from './embedded-postgres';
import { watchedClientClass, type DataGeneration } from './data-generation';

/** Every entity and migration, listed explicitly (no globs: the same list works from sources and from dist). */
export const ENTITIES = [
  UserEntity,
  HubPkiEntity,
  SiloEntity,
  EnrollmentTokenEntity,
  SiloCertificateEntity,
  StudyEntity,
  StudyPlanVersionEntity,
  StudyDecisionEntity,
  RoundEntity,
  RoundParticipantEntity,
  PrivacyLedgerEntity,
  AuditRecordEntity,
  AuditCheckpointEntity,
  AuditSigningKeyEntity,
  SecAggSessionEntity,
  SecAggMessageEntity,
  WebhookEndpointEntity,
  WebhookDeliveryEntity,
  WebhookAttemptEntity,
  StudyDraftEntity,
];
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

/**
 * TypeORM's options for the database. With `generation`, every pooled connection reports the statements it sends
 * (DataGeneration), so reads can be reused until data changes; the hub passes it on the embedded database only.
 */
export function dataSourceOptions(db: DatabaseEndpoint, generation?: DataGeneration): DataSourceOptions {
  return {
    type: 'postgres',
    // The embedded database listens on a Unix socket only: node-postgres takes a directory as `host` and connects
    // to `<host>/.s.PGSQL.<port>` (no TCP, ADR 0002).
    ...(db.kind === 'external'
      ? { url: db.url }
      : { host: db.socketDirectory, port: db.socketPort, username: 'postgres', database: 'postgres' }),
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: 'migrations',
    synchronize: false,
    migrationsRun: false,
    logging: false,
    extra: { max: db.poolSize, ...(generation ? { Client: watchedClientClass(generation) } : {}) },
  };
}
