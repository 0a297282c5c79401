// What the hub answers for a study's history pages: every round with each silo's status, every steward decision on
// every plan version, the plan versions with what changed, and the wizard's drafts saved on the hub. Types only.
import type { Decision } from './rounds';
import type { PlanChange } from './plan-diff';
import type { StudyPlan } from './study-plan';

/**
 * What one silo did in one round attempt, from the hub's records:
 * - trained / evaluated: its update (train) or its evaluation (final round) was accepted and counted;
 * - excluded: its update arrived but update screening left it out of the aggregate (the plan's screening.exclude);
 * - waiting: the round is still open and the silo has not reported;
 * - late: the round closed at its deadline without the silo's report;
 * - failed: the silo reported a failure, or its stored update could not be used (`reason` says which);
 * - dropped: the silo takes part in the study but was not in this attempt, or the attempt ended (stopped, failed)
 *   before it reported.
 */
export type SiloRoundStatus = 'trained' | 'evaluated' | 'excluded' | 'waiting' | 'late' | 'failed' | 'dropped';

export interface SiloRoundCell {
  siloId: string;
  status: SiloRoundStatus;
  /** Why, for failed, excluded and dropped (the silo's failure code and message, the screening flags…). */
  reason: string | null;
}

export interface RoundHistoryEntry {
  number: number;
  attempt: number;
  kind: 'train' | 'evaluate';
  status: 'open' | 'closing' | 'closed' | 'retried' | 'failed' | 'abandoned';
  openedAt: string;
  closedAt: string | null;
  closeReason: string | null;
  /** One cell per silo of RoundHistoryView.silos, in the same order. */
  silos: SiloRoundCell[];
}

/** GET /api/studies/:id/round-history: every attempt of every round (oldest first), every silo in each. */
export interface RoundHistoryView {
  studyId: string;
  /** The study's participants (or invited silos before it starts), then any other silo seen in a round. */
  silos: { id: string; name: string }[];
  rounds: RoundHistoryEntry[];
}

/** One steward decision, kept whatever came after it (a rejection later followed by an approval stays listed). */
export interface DecisionRecordView {
  siloId: string;
  siloName: string;
  planVersion: number;
  planHash: string;
  decision: Decision;
  reason: string | null;
  decidedAt: string;
  /** Whether the decision is on the study's current plan version. */
  current: boolean;
}

/** GET /api/studies/:id/decisions: every decision of every silo on every plan version, oldest first. */
export interface DecisionHistoryView {
  studyId: string;
  currentPlanVersion: number;
  decisions: DecisionRecordView[];
}

/** One plan version and what changed from the version before it (empty for version 1). */
export interface PlanVersionView {
  version: number;
  planHash: string;
  createdAt: string;
  plan: StudyPlan;
  changes: PlanChange[];
}

/** GET /api/studies/:id/plan-versions, oldest first. */
export interface PlanVersionsView {
  studyId: string;
  versions: PlanVersionView[];
}

/**
 * A study wizard's draft kept on the hub (GET/PUT /api/study-drafts): the form as typed (the console's own shape,
 * opaque to the hub), saved as it is edited so a reload, Back or an expired session loses nothing.
 */
export interface StudyDraftView {
  id: string;
  /** What the draft is listed as: the plan name typed so far, or "Untitled draft". */
  title: string;
  /** A draft of a new plan version of this study; null for a new study. */
  studyId: string | null;
  /** The wizard's form (the console's PlanDraft) and the step it was at. */
  form: Record<string, unknown>;
  step: number;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
}

/** The study pages' routes under the hub's API. */
export const STUDY_PAGES_API = {
  roundHistory: (id: string) => `/api/studies/${id}/round-history`,
  decisions: (id: string) => `/api/studies/${id}/decisions`,
  planVersions: (id: string) => `/api/studies/${id}/plan-versions`,
  pause: (id: string) => `/api/studies/${id}/pause`,
  resume: (id: string) => `/api/studies/${id}/resume`,
  archive: (id: string) => `/api/studies/${id}/archive`,
  unarchive: (id: string) => `/api/studies/${id}/unarchive`,
  clone: (id: string) => `/api/studies/${id}/clone`,
  studiesArchived: (filter: 'exclude' | 'include' | 'only') => `/api/studies?archived=${filter}`,
  drafts: '/api/study-drafts',
  draft: (id: string) => `/api/study-drafts/${id}`,
} as const;
