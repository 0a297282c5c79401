import { StudyPlan, type StudyProgressView, type StudyView } from '@tessera/protocol';
import { defaultDraft, draftToPlan } from '../lib/plan-draft.js';

export const LIST_SILOS = [
  { siloId: '00000000-0000-4000-8000-000000000001', siloName: 'Cleveland Clinic' },
  { siloId: '00000000-0000-4000-8000-000000000002', siloName: 'Hungarian Institute of Cardiology' },
  { siloId: '00000000-0000-4000-8000-000000000003', siloName: 'Universitätsspital Zürich' },
];

const PLAN = StudyPlan.parse({
  ...(draftToPlan({ ...defaultDraft('list-test-salt'), name: 'List', purpose: 'Studies list tests' }) as object),
  silos: LIST_SILOS.map((s) => s.siloId),
});

/** A study as GET /api/studies lists it, 10 rounds planned, every silo invited; override what the test is about. */
export function listedStudy(
  n: number,
  overrides: Partial<Omit<StudyView, 'progress'>> & { progress?: Partial<StudyProgressView> } = {},
  silos = LIST_SILOS,
): StudyView {
  const { progress, ...rest } = overrides;
  return {
    id: `10000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
    name: `Study ${n}`,
    status: 'running',
    planVersion: 1,
    planHash: `${n}`.repeat(64).slice(0, 64),
    plan: PLAN,
    privacyCost: null,
    participants: silos.map((s) => s.siloId),
    currentModelHash: null,
    endReason: null,
    createdAt: '2026-12-01T09:00:00.000Z',
    startedAt: null,
    endedAt: null,
    decisions: silos.map((s) => ({ ...s, decision: 'approve', planHash: null, decidedAt: null, reason: null })),
    paused: null,
    archivedAt: null,
    progress: { round: null, rounds: 10, finalEvaluation: null, accuracy: null, ...progress },
    ...rest,
  };
}
