import type { ReleasePlan } from '@tessera/protocol';
import { numberOf, type PlanDraft, type PrivacyMode, type ReleaseDraft } from './plan-draft-fields.js';

// The draft's release section (what a silo sends besides its update): each privacy mode's default, to the plan and
// back.

export function releaseToPlan(r: ReleaseDraft): Record<string, unknown> {
  const evaluation =
    r.evaluation === 'none'
      ? { mode: 'none' }
      : r.evaluation === 'noisy'
        ? { mode: 'noisy', rounds: r.evaluationRounds, scoreBins: numberOf(r.scoreBins) }
        : { mode: 'exact', rounds: r.evaluationRounds };
  return { evaluation, trainingExamples: r.trainingExamples };
}

/** Score bins of a new noisy evaluation (the hub's demo plan uses the same). */
const DEFAULT_SCORE_BINS = 4;

/**
 * What a plan releases by default for each privacy mode (the hub's demo plan makes the same choice): with DP-SGD a
 * noisy evaluation of the final model and no record count, so nothing leaves a silo without noise; with DP-FedAvg
 * (silo-level, noisy evaluation does not apply) nothing; without DP the exact metrics every round and the record
 * counts, which the steward sees listed as released without differential privacy.
 */
export function defaultReleaseDraft(mode: PrivacyMode): ReleaseDraft {
  switch (mode) {
    case 'dp-sgd':
      return {
        evaluation: 'noisy',
        evaluationRounds: 'final',
        scoreBins: String(DEFAULT_SCORE_BINS),
        trainingExamples: 'none',
        chosen: false,
      };
    case 'dp-fedavg':
      return {
        evaluation: 'none',
        evaluationRounds: 'final',
        scoreBins: String(DEFAULT_SCORE_BINS),
        trainingExamples: 'none',
        chosen: false,
      };
    case 'none':
      return {
        evaluation: 'exact',
        evaluationRounds: 'every',
        scoreBins: String(DEFAULT_SCORE_BINS),
        trainingExamples: 'exact',
        chosen: false,
      };
  }
}

/** The draft after the privacy mode changed: a release nobody chose follows the new mode's default. */
export function withPrivacyMode(d: PlanDraft, mode: PrivacyMode): PlanDraft {
  return { ...d, privacy: { ...d.privacy, mode }, release: d.release.chosen ? d.release : defaultReleaseDraft(mode) };
}

export function releaseToDraft(release: ReleasePlan, mode: PrivacyMode): ReleaseDraft {
  const e = release.evaluation;
  const draft: ReleaseDraft = {
    evaluation: e.mode,
    evaluationRounds: e.mode === 'none' ? 'final' : e.rounds,
    scoreBins: e.mode === 'noisy' ? String(e.scoreBins) : String(DEFAULT_SCORE_BINS),
    trainingExamples: release.trainingExamples,
    chosen: true,
  };
  // A plan whose release is its mode's default keeps following the mode, like a new draft. (Both sides come from
  // releaseToPlan, which builds its objects in one key order, so comparing their JSON compares their content.)
  const isDefault = JSON.stringify(releaseToPlan(draft)) === JSON.stringify(releaseToPlan(defaultReleaseDraft(mode)));
  return { ...draft, chosen: !isDefault };
}
