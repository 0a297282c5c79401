// The answers of the hub's routes that are plain TypeScript types (most of the people API: libs/protocol api-views,
// and a few of the hub's own), one name each. `npm run openapi` turns every type HubApiViews uses into a JSON Schema
// (ts-json-schema-generator) in view-schemas.generated.ts; the controllers' @ApiOkResponse decorators name them.
// Types that are zod schemas (the plan, the silo protocol) are not listed: their schemas come from zod itself
// (zod-schemas.ts), and where a type here uses one, the generated schema refers to it by name.
import type {
  AuditSigningKeyView,
  CertificateView,
  Checkpoint,
  CurrentUserView,
  OidcSignInOptionsView,
  DecisionHistoryView,
  PlanVersionsView,
  RoundHistoryView,
  SessionView,
  SiloPrivacyView,
  SiloDetailView,
  SiloView,
  StudyDraftView,
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

/** A route's answer: the hub's CA, which a new agent checks against its bundle's fingerprint before it trusts it. */
export interface CaCertificateView {
  caCertificatePem: string;
  /** SHA-256 (hex) of the CA certificate's DER. */
  fingerprintSha256: string;
}

/** A silo's report was taken (evaluation, failure). */
export interface AcceptedView {
  accepted: true;
}

/** The events a webhook endpoint can subscribe to. */
export interface WebhookEventTypesView {
  eventTypes: string[];
}

/** Liveness or readiness (@nestjs/terminus): `status` ok or error, and each check's result by name. */
export interface HealthView {
  status: 'ok' | 'error' | 'shutting_down';
  info?: Record<string, { status: string; [detail: string]: unknown }>;
  error?: Record<string, { status: string; [detail: string]: unknown }>;
  details: Record<string, { status: string; [detail: string]: unknown }>;
}

/**
 * The root the generator starts from: every view an answer uses, each emitted under its own name (this interface
 * itself is not). Add a property when a route answers a new TypeScript type.
 */
export interface HubApiViews {
  session: SessionView;
  currentUser: CurrentUserView;
  oidcSignIn: OidcSignInOptionsView;
  user: AccountView;
  silo: SiloView;
  siloDetail: SiloDetailView;
  certificate: CertificateView;
  enrollmentIssued: EnrollmentIssued;
  siloPrivacy: SiloPrivacyView;
  study: StudyView;
  round: RoundView;
  studyPrivacy: StudyPrivacyView;
  studyEvent: StudyLiveMessage;
  roundHistory: RoundHistoryView;
  decisionHistory: DecisionHistoryView;
  planVersions: PlanVersionsView;
  studyDraft: StudyDraftView;
  auditEvents: AuditEventPage;
  auditVerification: StoredChainVerification;
  checkpoint: Checkpoint;
  auditPublicKey: HubPublicKey;
  auditSigningKey: AuditSigningKeyView;
  webhookEndpoint: WebhookEndpointView;
  createdWebhook: CreatedWebhookView;
  webhookDelivery: WebhookDeliveryView;
  webhookEventTypes: WebhookEventTypesView;
  caCertificate: CaCertificateView;
  accepted: AcceptedView;
  health: HealthView;
}
