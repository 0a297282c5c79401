import { toNestErrors } from '@hookform/resolvers';
import type { FieldError, Resolver } from 'react-hook-form';
import { studyPlanProblems, type StudyPlan } from '@tessera/protocol';
import { draftToPlan, type PlanDraft } from '../../lib/plan-draft.js';
import { splitProblem } from '../../lib/plan-problems.js';
import { privacyPlanProblems } from '../../lib/privacy-plan-checks.js';

/**
 * Every problem of the plan a draft describes, as "path: message", by the hub's own checks: studyPlanProblems from
 * @tessera/protocol, i.e. the shared zod StudyPlan schema and then the cross-field rules (duplicate features, label
 * as a feature, fedprox μ, quorum…), then the privacy pricing the hub does on save (privacyPlanProblems). The wizard shows these as they are typed, each at the field its path names.
 */
export function draftProblems(draft: PlanDraft): string[] {
  return planProblems(draftToPlan(draft));
}

/**
 * studyPlanProblems, then (for a plan that passes it) whether the hub can price its privacy: an impossible target is
 * a problem of the privacy step, refused there with the hub's own reason, not only when the plan is sent.
 */
function planProblems(candidate: unknown): string[] {
  const problems = studyPlanProblems(candidate);
  return problems.length > 0 ? problems : privacyPlanProblems(candidate as StudyPlan);
}

/**
 * The form's resolver: a draft is valid when the hub would accept its plan, and the form then hands over that plan.
 * Errors are keyed by plan path (the wizard's field identity), nested the way react-hook-form expects.
 *
 * Not zodResolver(StudyPlan): it would skip the cross-field rules, which live beside the schema rather than in it,
 * and it expands a failed z.union into the issues of every branch (a missing label column would also flag the
 * operator with `expected "in"`), so the wizard would disagree with the hub on the same plan.
 */
export const studyPlanResolver: Resolver<PlanDraft, unknown, StudyPlan> = (draft, _context, options) => {
  const candidate = draftToPlan(draft);
  const problems = planProblems(candidate);
  if (problems.length === 0) return { values: candidate as StudyPlan, errors: {} };
  // One error per path: its first problem is the message, every problem of the path is listed under `types.plan`.
  const flat: Record<string, FieldError> = {};
  for (const problem of problems) {
    const { path, message } = splitProblem(problem);
    const listed = flat[path]?.types?.plan;
    flat[path] = {
      type: 'plan',
      message: flat[path]?.message ?? message,
      types: { plan: Array.isArray(listed) ? [...listed, message] : [message] },
    };
  }
  return { values: {}, errors: toNestErrors(flat, options) };
};
