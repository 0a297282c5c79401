import type { ComponentType } from 'react';
import type { PlanDraft } from '../../lib/plan-draft.js';

/**
 * One step of the study wizard, complete in its own file: what it is called, which part of the plan it edits, which
 * fields it shows, and how it draws them. The shell (../study-wizard.tsx) and the problem placement derive everything
 * else (navigation, problem counts, "Next" refusing a step with problems, the review) from the list of steps.
 */
export interface WizardStep {
  /** Stable id (the stepper's key, and what tests name). */
  id: string;
  title: string;
  /**
   * The first segments of the plan paths this step edits (`schema` for schema.features.3.name): problems under them
   * are shown in this step, counted at its stepper button, and keep "Next" from leaving it.
   */
  owns: readonly string[];
  /** The plan paths of the fields and field groups it shows for this draft, in display order. */
  fieldPaths(draft: PlanDraft): string[];
  /** Draws the step; reads the form (useFormContext) and the wizard (useWizard). */
  Component: ComponentType;
}
