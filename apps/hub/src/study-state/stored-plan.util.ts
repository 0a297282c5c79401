import type { PrivacyMechanism } from '@tessera/dp';
import { StudyPlan, type ReleasePlan } from '@tessera/protocol';
import { z } from 'zod';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { PrivacyCost } from './study.entity';

/** At most this many schema problems are listed in a legacy plan's view (the first ones say enough). */
const MAX_LISTED_PROBLEMS = 20;

/** Said in every view, report and refusal of a study whose stored plan predates the current plan format. */
export const LEGACY_PLAN_NOTE =
  'This plan predates the current plan format and is shown exactly as stored (its hash is the one the stewards ' +
  "approved). It split records into training and test by a seeded shuffle of each silo's whole file and could " +
  "standardise and impute with the file's own statistics, so one record changed where every other record went and " +
  'how it was encoded: the differential-privacy guarantee of this release cannot hold for it, and the plan cannot ' +
  'be converted. The study can be read but never run again; create a new study with a plan in the current format.';

/**
 * What a plan of the earlier format released, in the current format's terms: every update carried the exact
 * training-record count and the exact test-split metrics of its input model, and the final model was evaluated
 * exactly. It also carried the update's training loss, which the current format never releases
 * (LEGACY_TRAINING_LOSS_RELEASE).
 */
export const LEGACY_RELEASE: ReleasePlan = {
  evaluation: { mode: 'exact', rounds: 'every' },
  trainingExamples: 'exact',
};

export const LEGACY_TRAINING_LOSS_RELEASE = "the training loss of every round's update";

/** A plan as stored in the studies table: current, or of an earlier format (kept as stored, never rewritten). */
export type StoredPlan = { current: true; plan: StudyPlan } | { current: false; problems: string[] };

/** The one test of whether a stored plan is in the current format (the shared schema, so hub and agents agree). */
export function storedPlanOf(stored: unknown): StoredPlan {
  const parsed = StudyPlan.safeParse(stored);
  if (parsed.success) return { current: true, plan: parsed.data };
  return {
    current: false,
    problems: parsed.error.issues
      .slice(0, MAX_LISTED_PROBLEMS)
      .map((i) => `${i.path.map(String).join('.') || 'plan'}: ${i.message}`),
  };
}

export function isCurrentPlan(stored: unknown): boolean {
  return storedPlanOf(stored).current;
}

/**
 * The invited silos of any stored plan: `silos` has kept its meaning across plan formats. Empty when even that is
 * unreadable, so a view of a damaged row still answers instead of failing.
 */
export function invitedSilosOf(stored: unknown): string[] {
  const parsed = z.object({ silos: StudyPlan.shape.silos }).safeParse(stored);
  return parsed.success ? parsed.data.silos : [];
}

/**
 * Refuses to act on a study whose stored plan is not in the current format (409 STUDY_STATE, naming the reason).
 * `action` completes "cannot …", e.g. "start".
 */
export function assertCurrentPlan(study: { name: string; plan: unknown }, action: string): void {
  const stored = storedPlanOf(study.plan);
  if (stored.current) return;
  throw new HubException(
    HubErrorCode.STUDY_STATE,
    `Study "${study.name}" cannot ${action}: its plan predates the current plan format. ${LEGACY_PLAN_NOTE}`,
    stored.problems,
  );
}

/**
 * The training mechanism a legacy DP study was approved with, from the privacy cost the hub stored when the plan
 * was created (the figures the stewards were shown). Plans of the earlier format had no noisy evaluation, so
 * `evaluation` is null; null without DP.
 */
export function legacyMechanismOf(cost: PrivacyCost | null): PrivacyMechanism | null {
  if (cost === null) return null;
  return {
    mechanism: cost.mechanism,
    unit: cost.unit,
    noiseMultiplier: cost.noiseMultiplier,
    clipNorm: cost.clipNorm,
    samplingRate: cost.samplingRate,
    stepsPerRound: cost.stepsPerRound,
    rounds: cost.rounds,
    // Plans of the earlier format had no personalization.
    personalizationSteps: 0,
    delta: cost.delta,
    targetEpsilon: cost.targetEpsilon,
    plannedEpsilon: cost.epsilon,
    accountant: cost.accountant,
    evaluation: null,
  };
}
