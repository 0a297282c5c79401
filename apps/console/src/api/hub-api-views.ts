import type {
  AuditSigningKeyView,
  AuditVerificationView,
  CertificateView,
  CurrentUserView,
  EnrollmentIssuedView,
  HubApiComponents,
  HubPublicKeyView,
  RoundView,
  SessionView,
  SiloDetailView,
  SiloPrivacyView,
  SiloView,
  StudyView,
  UserView,
} from '@tessera/protocol';

// The console reads the hub's answers as the views of @tessera/protocol (ApiClient.answer). This file compiles only
// while every answer the hub's OpenAPI document describes (libs/protocol hub-api.generated.ts, regenerated from the
// hub by `npm run openapi`) is assignable to the view the console reads it as: a field the hub dropped or retyped
// fails `npm run typecheck` here, not in a browser. Not listed: the audit records and checkpoints (AuditEventPage,
// Checkpoint), whose JSON details the document gives as any JSON value (a recursive JSON type is one that
// openapi-typescript cannot write), so they are not assignable to the exact JsonValue of the views.

type Schemas = HubApiComponents['schemas'];
/** `true` when the document's schema is assignable to the view, else `never` (and `true` no longer type-checks). */
type Conforms<Document, View> = [Document] extends [View] ? true : never;

export const DOCUMENT_ANSWERS_CONFORM: {
  SessionView: Conforms<Schemas['SessionView'], SessionView>;
  CurrentUserView: Conforms<Schemas['CurrentUserView'], CurrentUserView>;
  UserView: Conforms<Schemas['UserView'], UserView>;
  SiloView: Conforms<Schemas['SiloView'], SiloView>;
  SiloDetailView: Conforms<Schemas['SiloDetailView'], SiloDetailView>;
  EnrollmentIssued: Conforms<Schemas['EnrollmentIssued'], EnrollmentIssuedView>;
  CertificateView: Conforms<Schemas['CertificateView'], CertificateView>;
  SiloPrivacyView: Conforms<Schemas['SiloPrivacyView'], SiloPrivacyView>;
  StudyView: Conforms<Schemas['StudyView'], StudyView>;
  RoundView: Conforms<Schemas['RoundView'], RoundView>;
  StoredChainVerification: Conforms<Schemas['StoredChainVerification'], AuditVerificationView>;
  HubPublicKey: Conforms<Schemas['HubPublicKey'], HubPublicKeyView>;
  AuditSigningKeyView: Conforms<Schemas['AuditSigningKeyView'], AuditSigningKeyView>;
} = {
  SessionView: true,
  CurrentUserView: true,
  UserView: true,
  SiloView: true,
  SiloDetailView: true,
  EnrollmentIssued: true,
  CertificateView: true,
  SiloPrivacyView: true,
  StudyView: true,
  RoundView: true,
  StoredChainVerification: true,
  HubPublicKey: true,
  AuditSigningKeyView: true,
};
