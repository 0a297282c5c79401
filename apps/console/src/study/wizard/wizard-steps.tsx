// .tsx although it holds no markup: it imports the step components (tsconfig.spec.json checks .ts files without JSX).
import type { PlanDraft } from '../../lib/plan-draft.js';
import { aggregationStep } from './aggregation.step.js';
import { basicsStep } from './basics.step.js';
import { dataStep } from './data.step.js';
import { modelStep } from './model.step.js';
import { participantsStep } from './participants.step.js';
import { privacyStep } from './privacy.step.js';
import { releaseStep } from './release.step.js';
import { reviewStep } from './review.step.js';
import { trainingStep } from './training.step.js';
import type { WizardStep } from './wizard-step.js';

/**
 * The wizard's steps in the order the person goes through them; the last one sends the plan. A new step is a new
 * `*.step.tsx` file beside these, exporting a WizardStep, and its place in this list (see ../study-wizard.tsx).
 */
export const WIZARD_STEPS: readonly WizardStep[] = [
  basicsStep,
  modelStep,
  dataStep,
  trainingStep,
  privacyStep,
  aggregationStep,
  releaseStep,
  participantsStep,
  reviewStep,
];

/** The step that shows a plan path's field: the one that owns its first segment (else the first step). */
export function stepOfPath(path: string, steps: readonly WizardStep[] = WIZARD_STEPS): string {
  const head = path.split('.')[0] ?? '';
  return (steps.find((s) => s.owns.includes(head)) ?? steps[0])?.id ?? '';
}

/** Every field (and field group) the wizard shows for this draft, step after step, in display order. */
export function wizardFieldPaths(draft: PlanDraft, steps: readonly WizardStep[] = WIZARD_STEPS): string[] {
  return steps.flatMap((s) => s.fieldPaths(draft));
}
