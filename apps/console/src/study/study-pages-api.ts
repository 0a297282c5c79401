import {
  STUDY_PAGES_API,
  type DecisionHistoryView,
  type PlanVersionsView,
  type RoundHistoryView,
  type StudyDraftView,
  type StudyView,
} from '@tessera/protocol';
import type { ApiClient } from '../api/api-client.js';

// The study pages' calls: history (rounds per silo, decisions, plan versions), lifecycle and the wizard's drafts.

export const roundHistory = (api: ApiClient, id: string): Promise<RoundHistoryView> =>
  api.json('GET', STUDY_PAGES_API.roundHistory(id));

export const decisionHistory = (api: ApiClient, id: string): Promise<DecisionHistoryView> =>
  api.json('GET', STUDY_PAGES_API.decisions(id));

export const planVersions = (api: ApiClient, id: string): Promise<PlanVersionsView> =>
  api.json('GET', STUDY_PAGES_API.planVersions(id));

export type LifecycleCommand = 'pause' | 'resume' | 'archive' | 'unarchive' | 'clone';

/** Runs a lifecycle command; answers the study it changed (for clone: the new draft). */
export function lifecycle(api: ApiClient, id: string, command: LifecycleCommand, reason = ''): Promise<StudyView> {
  return api.json('POST', STUDY_PAGES_API[command](id), command === 'pause' ? { reason } : undefined);
}

export const studiesArchived = (api: ApiClient, filter: 'exclude' | 'include' | 'only'): Promise<StudyView[]> =>
  api.json('GET', STUDY_PAGES_API.studiesArchived(filter));

export const listDrafts = (api: ApiClient): Promise<StudyDraftView[]> => api.json('GET', STUDY_PAGES_API.drafts);

export const getDraft = (api: ApiClient, id: string): Promise<StudyDraftView> =>
  api.json('GET', STUDY_PAGES_API.draft(id));

export interface DraftContent {
  form: Record<string, unknown>;
  step: number;
}

export const createDraft = (api: ApiClient, content: DraftContent & { studyId?: string }): Promise<StudyDraftView> =>
  api.json('POST', STUDY_PAGES_API.drafts, content);

export const saveDraft = (api: ApiClient, id: string, content: DraftContent): Promise<StudyDraftView> =>
  api.json('PUT', STUDY_PAGES_API.draft(id), content);

export async function deleteDraft(api: ApiClient, id: string): Promise<void> {
  await api.send('DELETE', STUDY_PAGES_API.draft(id));
}
