// The answers of the hub's routes that are plain TypeScript types (most of the people API: libs/protocol api-views,
// and a few of the hub's own), one name each. `npm run openapi` turns every type exported here into a JSON Schema
// (ts-json-schema-generator) in view-schemas.generated.ts; the controllers' @ApiOkResponse decorators name them.
// Types that are zod schemas (the plan, the silo protocol) are not listed: their schemas come from zod itself
// (zod-schemas.ts), and where a type here uses one, the generated schema refers to it by name.
import type {
  AuditSigningKeyView,
  CertificateView,
  Checkpoint,
  CurrentUserView,
  SessionView,
  SiloPrivacyView,
  SiloView,
  StudyLiveMessage,
} from '@tessera/protocol';
import type { UserView as AccountView } from '../accounts/accounts.service';
import type { AuditEventPage } from '../audit/audit-log.service';
import type { HubPublicKey } from '../audit/audit-signing-key.service';
import type { StoredChainVerification } from '../audit/audit-verification.service';
import type { CreatedWebhookView, WebhookDeliveryView, WebhookEndpointView } from '../notifications/webhook-views';
import type { RoundView } from '../rounds/rounds-query.service';
import type { EnrollmentIssued } from '../silos/silos.service';
import type { StudyPrivacyView } from '../studies/studies.controller';
import type { StudyView } from '../studies/studies.service';

export type Session = SessionView;
export type CurrentUser = CurrentUserView;
export type User = AccountView;
export type Silo = SiloView;
export type SiloDetail = SiloView & { certificates: CertificateView[] };
export type Certificate = CertificateView;
export type EnrollmentIssuedView = EnrollmentIssued;
export type SiloPrivacy = SiloPrivacyView;
export type Study = StudyView;
export type Round = RoundView;
export type StudyPrivacy = StudyPrivacyView;
export type StudyEvent = StudyLiveMessage;
export type AuditEvents = AuditEventPage;
export type AuditVerification = StoredChainVerification;
export type AuditCheckpoint = Checkpoint;
export type AuditPublicKey = HubPublicKey;
export type AuditSigningKey = AuditSigningKeyView;
export type WebhookEndpoint = WebhookEndpointView;
export type CreatedWebhook = CreatedWebhookView;
export type WebhookDelivery = WebhookDeliveryView;
export interface WebhookEventTypes {
  eventTypes: string[];
}
