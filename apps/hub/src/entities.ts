// The application's entities, at its composition root: every feature folder maps its own tables, and the database
// folder, which the features stand on, must not import them (docs/adr/0020-hub-folder-layers.md). Listed explicitly
// (no globs: the same list works from sources and from dist).
import { AuditCheckpointEntity } from './audit/audit-checkpoint.entity';
import { AuditRecordEntity } from './audit/audit-record.entity';
import { AuditSigningKeyEntity } from './audit/audit-signing-key.entity';
import { EnrollmentTokenEntity } from './silos/enrollment-token.entity';
import { HubPkiEntity } from './pki/hub-pki.entity';
import { PrivacyLedgerEntity } from './privacy/privacy-ledger.entity';
import { RoundEntity } from './study-state/round.entity';
import { RoundParticipantEntity } from './study-state/round-participant.entity';
import { SecAggMessageEntity } from './secagg/secagg-message.entity';
import { SecAggSessionEntity } from './secagg/secagg-session.entity';
import { SiloCertificateEntity } from './silos/silo-certificate.entity';
import { SiloEntity } from './silos/silo.entity';
import { StudyDecisionEntity } from './studies/study-decision.entity';
import { StudyDraftEntity } from './studies/study-draft.entity';
import { StudyEntity } from './study-state/study.entity';
import { StudyPlanVersionEntity } from './studies/study-plan-version.entity';
import { UserEntity } from './accounts/user.entity';
import { WebhookAttemptEntity, WebhookDeliveryEntity } from './notifications/webhook-delivery.entity';
import { WebhookEndpointEntity } from './notifications/webhook-endpoint.entity';

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
