import type { StudyStatus, StudyView } from '@tessera/protocol';

/**
 * What the studies list shows: the studies not archived (`current`, the default), every study (`everything`), one
 * status among those not archived (`running` leaves paused ones out; `paused` is a running study an administrator
 * paused), or the archived ones.
 */
export type StudyStatusFilter = 'current' | 'everything' | StudyStatus | 'paused' | 'archived';

export const STUDY_STATUS_FILTERS: readonly { value: StudyStatusFilter; label: string }[] = [
  { value: 'current', label: 'All but archived' },
  { value: 'draft', label: 'Draft' },
  { value: 'awaiting_approvals', label: 'Awaiting approval' },
  { value: 'running', label: 'Running' },
  { value: 'paused', label: 'Paused' },
  { value: 'completed', label: 'Completed' },
  { value: 'failed', label: 'Failed' },
  { value: 'stopped', label: 'Stopped' },
  { value: 'archived', label: 'Archived' },
  { value: 'everything', label: 'All, archived included' },
];

/** Which list to ask the hub for (GET /api/studies?archived=…) to apply a status filter. */
export function archivedQueryOf(status: StudyStatusFilter): 'exclude' | 'include' | 'only' {
  return status === 'archived' ? 'only' : status === 'everything' ? 'include' : 'exclude';
}

/** Case- and accent-insensitive text for matching ("Zürich" matches "zurich"). */
function folded(text: string): string {
  return text.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}

function hasStatus(s: StudyView, status: StudyStatusFilter): boolean {
  switch (status) {
    case 'current':
      return !s.archivedAt;
    case 'everything':
      return true;
    case 'archived':
      return !!s.archivedAt;
    case 'paused':
      return !s.archivedAt && s.status === 'running' && !!s.paused;
    case 'running':
      return !s.archivedAt && s.status === 'running' && !s.paused;
    default:
      return !s.archivedAt && s.status === status;
  }
}

/**
 * The studies matching a search and a status, in the order given. Every word of the search must appear in the
 * study's name, its id or the name of an invited silo, or begin its plan hash (a prefix, as hashes are quoted).
 */
export function filterStudies(studies: readonly StudyView[], query: string, status: StudyStatusFilter): StudyView[] {
  const words = folded(query).split(/\s+/).filter(Boolean);
  return studies.filter((s) => {
    if (!hasStatus(s, status)) return false;
    if (words.length === 0) return true;
    const haystack = folded([s.name, s.id, ...s.decisions.map((d) => d.siloName)].join(' '));
    const hash = s.planHash.toLowerCase();
    return words.every((w) => haystack.includes(w) || (w.length >= 4 && hash.startsWith(w)));
  });
}

/** The progress column: "round r of R" while rounds run, or the state the study is in. */
export function progressLabel(s: StudyView): string {
  const p = s.progress;
  const approved = s.decisions.filter((d) => d.decision === 'approve').length;
  if (s.status === 'draft') return 'not submitted';
  if (s.status === 'awaiting_approvals') return `awaiting approval (${approved} of ${s.decisions.length})`;
  if (!p) return s.status;
  const of = p.rounds === null ? '' : ` of ${p.rounds}`;
  const at = p.round === null ? null : `round ${p.round}${of}`;
  if (s.status === 'running') {
    const where =
      p.finalEvaluation === 'open' || p.finalEvaluation === 'closing' ? 'final evaluation' : (at ?? 'starting round 1');
    return s.paused ? `${where}, paused` : where;
  }
  if (s.status === 'completed') {
    return p.round === null ? 'completed' : `completed: ${p.round}${of} rounds`;
  }
  // failed or stopped
  return at ? `${s.status} at ${at}` : `${s.status} before round 1`;
}

/**
 * The results column: the latest mean accuracy the hub holds, where it was measured (as the charts label it: round r
 * evaluates the model round r started from; "final" the last model), and whether it is a noisy DP estimate.
 */
export function resultOf(s: StudyView): { accuracy: number; where: string; noisy: boolean } | null {
  const a = s.progress?.accuracy;
  if (!a) return null;
  return { accuracy: a.mean, where: a.final ? 'final model' : `round ${a.round}`, noisy: a.noisy };
}
