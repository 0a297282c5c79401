// What the hub's people-facing API (/api/*) answers, as plain types: the console and scripts read these, and the
// hub's services return the same shapes. Types and path constants only, no Node built-ins: the browser imports them.
import type { AgentSoftware, AgentTask } from './agent-presence';
import type { AuditActorNames, AuditRecord } from './audit-views';
import type { EnrollmentBundle } from './identity';
import type { Decision, EvaluationMetrics, PersonalizationMetrics, PrivacySpend, StudyStatus } from './rounds';
import type { StudyPlan } from './study-plan';
import type { RoundScreeningView } from './study-plan-aggregation';

export type { RoundScreeningView, ScreeningFlagView } from './study-plan-aggregation';

/** A person's role: administrators run the hub; auditors read everything and change nothing. */
export type UserRole = 'admin' | 'auditor';

/**
 * POST /api/auth/login, /api/auth/refresh and /api/auth/password. The refresh token travels only in the httpOnly
 * cookie the same answer sets (ADR 0010), never here.
 */
export interface SessionView {
  /** Bearer token for the Authorization header. */
  accessToken: string;
  /** Seconds until the access token expires: refresh before then. */
  expiresIn: number;
  role: UserRole;
  username: string;
  /** When the session ends whatever happens (ISO 8601). */
  sessionExpiresAt: string;
  /** The session ends this many seconds after its last refresh. */
  idleTimeoutSeconds: number;
  /** A temporary password was set by an administrator: only the password change is served. */
  passwordChangeRequired: boolean;
}

/** GET /api/auth/me */
export interface CurrentUserView {
  id: string;
  username: string;
  role: UserRole;
  mustChangePassword: boolean;
}

/** GET /api/users and friends (administrators only). */
export interface UserView {
  id: string;
  username: string;
  role: UserRole;
  disabled: boolean;
  /** A temporary password is set: the next sign-in may only change it. */
  mustChangePassword: boolean;
  createdAt: string;
  lastSignInAt: string | null;
  /** Sessions that may be used now. */
  liveSessions: number;
  /** The identity at the hospital's identity provider this account signs in with (OIDC), if linked. */
  oidcIdentity: { issuer: string; subject: string } | null;
}

/** GET /api/auth/oidc: whether the sign-in page offers the identity provider, and its name. */
export interface OidcSignInOptionsView {
  enabled: boolean;
  providerName: string | null;
}

export type SiloStatus = 'registered' | 'enrolled' | 'suspended';

/** GET /api/silos, GET /api/silos/:id (without `certificates`). */
export interface SiloView {
  id: string;
  name: string;
  contact: string;
  status: SiloStatus;
  suspendedReason: string | null;
  /** Last request the silo's agent made over mutual TLS (the same as `agent.lastSeen.silo`). */
  lastSeenAt: string | null;
  createdAt: string;
  /** The newest active certificate. */
  certificate: { serial: string; notAfter: string; status: string } | null;
  /**
   * The newest certificate whatever its status: with no active one, it says why (revoked, and for what). Absent
   * from hubs older than this field.
   */
  latestCertificate?: {
    serial: string;
    notAfter: string;
    /** 'active' | 'superseded' | 'revoked' */
    status: string;
    revokedAt: string | null;
    revocationReason: string | null;
  } | null;
  /** An unused enrollment token that has not expired yet. */
  enrollmentPending: { expiresAt: string } | null;
  /** What the hub sees of the silo's agent (SiloPresence); absent from hubs older than this field. */
  agent?: SiloAgentView;
}

/** The hub's facts about a silo's agent, from its requests; the console derives online/offline from them. */
export interface SiloAgentView {
  /** The agent's requests open on the answering hub now: a long poll waiting for work is one. */
  openRequests: number;
  /** Last request seen on each listener (the end of it, for one that stayed open, e.g. a long poll), ISO 8601. */
  lastSeen: { silo: string | null; enroll: string | null };
  /** What the agent said about itself on its last request (x-tessera-agent); null before it said anything. */
  software: AgentSoftware | null;
  /** The task it said it was carrying out on its last request (x-tessera-agent-task), and since when. */
  task: (AgentTask & { since: string }) | null;
  /** With no request open, the agent counts as offline this long after `lastSeen.silo` (seconds). */
  offlineAfterSeconds: number;
  /** The hub's clock when it answered: the console judges `lastSeen` against it, not the browser's clock. */
  observedAt: string;
}

export interface CertificateView {
  serial: string;
  fingerprintSha256: string;
  notBefore: string;
  notAfter: string;
  /** 'active' | 'superseded' | 'revoked' */
  status: string;
  /** 'enrollment' | 'renewal' */
  issuedVia: string;
  firstUsedAt: string | null;
  revokedAt: string | null;
  revocationReason: string | null;
}

/** GET /api/silos/:id */
export interface SiloDetailView extends SiloView {
  certificates: CertificateView[];
}

/** POST /api/silos and POST /api/silos/:id/enrollment: the bundle is shown once (the hub keeps only a hash). */
export interface EnrollmentIssuedView {
  silo: SiloView;
  bundle: EnrollmentBundle;
  /** The bundle as one line of text, for `tessera-agent enroll --bundle` and TESSERA_ENROLLMENT_BUNDLE. */
  bundleText: string;
}

/** The mechanism the hub derived for a DP plan and the ε it costs the whole study (see privacyMechanismOf). */
export interface StudyPrivacyCostView {
  mechanism: 'dp-sgd' | 'dp-fedavg';
  unit: 'record' | 'silo';
  /** σ, relative to the clipping norm C. */
  noiseMultiplier: number;
  clipNorm: number;
  samplingRate: number;
  stepsPerRound: number;
  rounds: number;
  /** ε of the whole planned study at δ. */
  epsilon: number;
  targetEpsilon: number;
  delta: number;
  accountant: string;
}

/** One invited silo's latest decision on the CURRENT plan version (null: not decided yet). */
export interface SiloDecisionView {
  siloId: string;
  siloName: string;
  decision: Decision | null;
  planHash: string | null;
  decidedAt: string | null;
  reason: string | null;
}

/** GET /api/studies, GET /api/studies/:id and the answers of every study command. */
export interface StudyView {
  id: string;
  name: string;
  status: StudyStatus;
  planVersion: number;
  planHash: string;
  plan: StudyPlan;
  privacyCost: StudyPrivacyCostView | null;
  /** Silos taking part: those that approved the plan version the study started with. */
  participants: string[];
  currentModelHash: string | null;
  endReason: string | null;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
  decisions: SiloDecisionView[];
  /**
   * Present only when the stored plan predates the current plan format: `plan` is then shown exactly as stored (it
   * does not match StudyPlan; read nothing the current format added) and the study can never run again. `problems`
   * lists where the stored plan departs from the current schema.
   */
  legacyPlan?: { note: string; problems: string[] };
  /**
   * Set while an administrator has paused the study: no new round opens (the one under way finishes), agents are
   * told and wait; resuming opens the round that was held back.
   */
  paused?: { since: string; reason: string } | null;
  /** When the study was archived: read-only, left out of the default list (GET /api/studies?archived=only lists it). */
  archivedAt?: string | null;
  /** The study this one was cloned from (its plan, nothing else), when it is a clone. */
  clonedFrom?: string | null;
  /** How far its rounds have gone and the latest result the hub holds (absent on hubs that do not report it). */
  progress?: StudyProgressView;
}

/** Where a study's rounds stand, and the latest mean accuracy its closed rounds measured. */
export interface StudyProgressView {
  /** The highest training round opened so far (any attempt); null before the first. */
  round: number | null;
  /** Training rounds the plan asks for; null for a stored plan of an earlier format that cannot be read. */
  rounds: number | null;
  /** The latest attempt of the final evaluation round; null until it opens. */
  finalEvaluation: RoundStatus | null;
  /**
   * The unweighted mean over silos of the accuracy of the latest round attempt whose summary holds one. A round's
   * evaluation measures the model it started from; `final` is the evaluation of the last model. `noisy`: an
   * estimate from differential-privacy releases, not an exact figure. Null when no closed round holds an accuracy.
   */
  accuracy: { mean: number; round: number; final: boolean; noisy: boolean } | null;
}

/** 'closing': a hub is aggregating the round's updates; it accepts no more reports. */
export type RoundStatus = 'open' | 'closing' | 'closed' | 'retried' | 'failed' | 'abandoned';
export type ParticipantStatus = 'waiting' | 'uploaded' | 'evaluated' | 'failed' | 'late';

/** Aggregate figures of a closed round: the evaluation of the round's INPUT model across silos. */
export interface RoundSummaryView {
  reported: number;
  participants: number;
  /** Null unless the plan releases training-record counts (release.trainingExamples 'exact'). */
  totalExamples: number | null;
  evaluation: {
    accuracy: { unweighted: number | null; weighted: number | null };
    loss: { unweighted: number | null; weighted: number | null };
    auc: { unweighted: number | null };
    /** Some figures are estimates from noisy (DP) evaluation releases. */
    noisy?: boolean;
    /** Network plans' task metrics, means over the silos that report them (absent otherwise). */
    balancedAccuracy?: { unweighted: number | null; weighted: number | null };
    f1?: { unweighted: number | null; weighted: number | null };
    mae?: { unweighted: number | null; weighted: number | null };
    rmse?: { unweighted: number | null; weighted: number | null };
    r2?: { unweighted: number | null; weighted: number | null };
  };
  /** Update screening of a training round, when the plan screens (docs/aggregation.md). */
  screening?: RoundScreeningView;
}

export interface RoundParticipantView {
  siloId: string;
  siloName: string;
  status: ParticipantStatus;
  numExamples: number | null;
  updateSha256: string | null;
  /** The silo's evaluation of the round's input model on its own held-out split. */
  evaluation: EvaluationMetrics | null;
  failure: { code: string; message: string } | null;
  /** What the silo spent on this round's update, when the plan uses DP (absent on hubs that do not report it). */
  privacy?: PrivacySpend | null;
  /**
   * The final evaluation of a personalizing plan: the silo's personalized model's figures and its local-only
   * baseline's (plan.personalization); absent or null otherwise.
   */
  personalization?: PersonalizationMetrics | null;
}

/** GET /api/studies/:id/rounds (oldest first; one entry per attempt). */
export interface RoundView {
  number: number;
  attempt: number;
  kind: 'train' | 'evaluate';
  status: RoundStatus;
  /** The global model published for this round. */
  modelHash: string;
  /** The model this round produced (train rounds that closed). */
  resultModelHash: string | null;
  openedAt: string;
  deadlineAt: string;
  closedAt: string | null;
  closeReason: string | null;
  summary: RoundSummaryView | null;
  participants: RoundParticipantView[];
}

/** One message of GET /api/studies/:id/events (server-sent events): the study and its rounds as they are now. */
export interface StudyLiveMessage {
  type: 'study';
  study: StudyView;
  rounds: RoundView[];
  /** When the hub read them (ISO 8601). */
  at: string;
}

/** GET /api/audit/events */
export interface AuditEventPageView {
  events: AuditRecord[];
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: number | null;
  /** A name for every actor on this page, by auditActorKey. */
  actorNames: AuditActorNames;
}

/** Filters of GET /api/audit/events and /api/audit/events.csv (all optional, combined with AND). */
export interface AuditEventQuery {
  from?: string;
  to?: string;
  actor?: string;
  /** Action prefix, e.g. `silo.` */
  action?: string;
  studyId?: string;
  siloId?: string;
  /** Case-insensitive text searched in the action and the details. */
  q?: string;
  limit?: number;
  cursor?: number;
  order?: 'asc' | 'desc';
}

export interface AuditChainProblemView {
  code: string;
  seq: number;
  message: string;
}

/** GET /api/audit/verify */
export interface AuditVerificationView {
  ok: boolean;
  verifiedAt: string;
  records: number;
  headSeq: number;
  headHash: string | null;
  checkpoints: { total: number; verified: number };
  firstBroken: AuditChainProblemView | null;
  problems: AuditChainProblemView[];
}

/** GET /api/audit/public-key */
export interface HubPublicKeyView {
  publicKeyPem: string;
  keyId: string;
}

/** Files of GET /api/studies/:id/model/:file */
export const MODEL_FILE_NAMES = ['model.json', 'weights.bin', 'model.onnx', 'parameters.f32'] as const;
export type ModelFileName = (typeof MODEL_FILE_NAMES)[number];

/** Files of GET /api/studies/:id/report.<ext>: the compliance report. */
export const REPORT_FILE_NAMES = ['report.pdf', 'report.json', 'report.csv'] as const;
export type ReportFileName = (typeof REPORT_FILE_NAMES)[number];

/** Paths of the people-facing API, shared so the console and the hub cannot drift apart. */
export const HUB_API = {
  login: '/api/auth/login',
  refresh: '/api/auth/refresh',
  logout: '/api/auth/logout',
  me: '/api/auth/me',
  password: '/api/auth/password',
  users: '/api/users',
  user: (id: string) => `/api/users/${id}`,
  userPassword: (id: string) => `/api/users/${id}/password`,
  userSessions: (id: string) => `/api/users/${id}/sessions`,
  silos: '/api/silos',
  silo: (id: string) => `/api/silos/${id}`,
  siloEnrollment: (id: string) => `/api/silos/${id}/enrollment`,
  siloSuspend: (id: string) => `/api/silos/${id}/suspend`,
  siloResume: (id: string) => `/api/silos/${id}/resume`,
  siloRevoke: (id: string, serial: string) => `/api/silos/${id}/certificates/${serial}/revoke`,
  /** What every study has spent on one silo's data (SiloPrivacyView). */
  siloPrivacy: (id: string) => `/api/silos/${id}/privacy`,
  studies: '/api/studies',
  study: (id: string) => `/api/studies/${id}`,
  studyPlan: (id: string) => `/api/studies/${id}/plan`,
  studySubmit: (id: string) => `/api/studies/${id}/submit`,
  studyStart: (id: string) => `/api/studies/${id}/start`,
  studyStop: (id: string) => `/api/studies/${id}/stop`,
  studyRounds: (id: string) => `/api/studies/${id}/rounds`,
  studyEvents: (id: string) => `/api/studies/${id}/events`,
  studyModel: (id: string, file: ModelFileName) => `/api/studies/${id}/model/${file}`,
  studyReport: (id: string, file: ReportFileName) => `/api/studies/${id}/${file}`,
  auditEvents: '/api/audit/events',
  auditEventsCsv: '/api/audit/events.csv',
  auditVerify: '/api/audit/verify',
  auditCheckpoints: '/api/audit/checkpoints',
  auditPublicKey: '/api/audit/public-key',
  /** Every audit signing key of the hub, with fingerprints (JSON). */
  auditPublicKeys: '/api/audit/public-keys',
  /** The current audit signing key as a PEM file (hub-public.pem), for `tessera-verify --public-key`. */
  auditPublicKeyPem: '/api/audit/public-key.pem',
  /** The API description (public). */
  openApi: '/api/docs/openapi.json',
} as const;
