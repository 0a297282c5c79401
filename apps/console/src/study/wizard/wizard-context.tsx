import { createContext, useContext } from 'react';
import type { SiloView, StudyPlan } from '@tessera/protocol';
import type { PlanDraft } from '../../lib/plan-draft.js';
import type { PlacedProblem } from '../../lib/plan-problems.js';

/** What every step reads from the wizard besides the form itself. */
export interface WizardState {
  /** The draft as it stands (the form's current values). */
  draft: PlanDraft;
  /** Silos that can be invited. */
  silos: SiloView[];
  /** Every problem of the draft (and the hub's last answer), each at the field that shows it. */
  problems: PlacedProblem[];
  /** The plan when it has no problem, else null. */
  plan: StudyPlan | null;
  /** The problems a field shows now: once touched, once its step was left with problems, or after sending. */
  // Function-typed properties, not methods: steps destructure them (`const { touch } = useWizard()`).
  shown: (path: string) => PlacedProblem[];
  /** Marks a field as touched: its problems show from then on. */
  touch: (path: string) => void;
  /** Opens the step of a problem's field and focuses the field. */
  jumpTo: (problem: PlacedProblem) => void;
}

const WizardContext = createContext<WizardState | null>(null);

export const WizardProvider = WizardContext.Provider;

export function useWizard(): WizardState {
  const state = useContext(WizardContext);
  if (!state) throw new Error('useWizard: a wizard step rendered outside the StudyWizard');
  return state;
}
