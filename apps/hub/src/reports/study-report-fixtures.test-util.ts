import type { StudyPlan } from '@tessera/protocol';
import type { StudyView } from '../studies/studies.service';

export const A = '11111111-1111-4111-8111-111111111111';
export const B = '22222222-2222-4222-8222-222222222222';
export const HASH = (c: string): string => c.repeat(64);

/** A completed study under `plan`, invited silos A and B both approving (its id a fixed uuid unless given). */
export function studyView(plan: StudyPlan, id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'): StudyView {
  return {
    id,
    name: plan.name,
    status: 'completed',
    planVersion: 2,
    planHash: HASH('e'),
    plan,
    privacyCost: null,
    participants: [A, B],
    currentModelHash: HASH('3'),
    endReason: null,
    createdAt: '2025-05-01T08:00:00.000Z',
    startedAt: '2025-05-01T09:00:00.000Z',
    endedAt: '2025-05-01T10:00:00.000Z',
    decisions: [
      {
        siloId: A,
        siloName: 'Ålesund Sykehus',
        decision: 'approve',
        planHash: HASH('e'),
        decidedAt: '2025-05-01T08:30:00.000Z',
        reason: null,
      },
      {
        siloId: B,
        siloName: 'Bergen Klinikk',
        decision: 'approve',
        planHash: HASH('e'),
        decidedAt: '2025-05-01T08:40:00.000Z',
        reason: null,
      },
    ],
  };
}
