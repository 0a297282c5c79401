import { useMemo } from 'react';
import { useFormContext } from 'react-hook-form';
import { defaultReleaseDraft, numberOf, type EvaluationReleaseMode, type PlanDraft } from '../../lib/plan-draft.js';
import { evaluationNoiseFor, evaluationReleaseCount } from '../../lib/privacy-accounting.js';
import { formatSignificant } from '../../lib/format.js';
import { Notice } from '../../ui/feedback.js';
import { useWizard } from './wizard-context.js';
import { Field, NumberField } from './wizard-fields.js';
import type { WizardStep } from './wizard-step.js';

const EVALUATION_CHOICES: Record<EvaluationReleaseMode, string> = {
  none: 'None: each hospital evaluates for its own log only',
  noisy: 'Noisy score histograms: DP estimates, charged to the privacy budget',
  exact: 'Exact metrics: released without differential privacy',
};

/** The noise the hub will derive for the draft's noisy evaluation, once target ε, δ and rounds are numbers. */
function DraftEvaluationNoise({ draft }: { draft: PlanDraft }) {
  const target = numberOf(draft.privacy.targetEpsilon);
  const delta = numberOf(draft.privacy.delta);
  const rounds = numberOf(draft.training.rounds);
  const ok = (x: number | undefined): x is number => x !== undefined && Number.isFinite(x) && x > 0;
  const releases = ok(rounds) ? evaluationReleaseCount(Math.round(rounds), draft.release.evaluationRounds) : null;
  const noise = useMemo(
    () =>
      ok(target) && ok(delta) && delta < 1 && releases !== null ? evaluationNoiseFor(target, delta, releases) : null,
    [target, delta, releases],
  );
  return (
    <p className="hint" data-testid="evaluation-noise">
      {noise === null
        ? 'Complete the target ε, δ and the rounds to see the evaluation noise.'
        : noise.ok
          ? `Each count gets discrete Gaussian noise of standard deviation ${formatSignificant(noise.value)} records: ${releases} release${releases === 1 ? '' : 's'} within the target ε = ${target} at δ = ${delta}. Test records never train, so this spends the budget alongside training, not on top of it; the hub derives the same value when the plan is saved.`
          : `The evaluation noise cannot be derived: ${noise.message}`}
    </p>
  );
}

/** What a silo sends besides its update: each choice says plainly whether it is released without DP. */
function ReleaseFields() {
  const { getValues, setValue } = useFormContext<PlanDraft>();
  const { draft, touch } = useWizard();
  const r = draft.release;
  const mode = draft.privacy.mode;
  // Once the designer chooses here, the release no longer follows the privacy mode's default.
  const chosen = () => setValue('release.chosen', true);
  return (
    <>
      <p className="hint">
        Besides its model update, a hospital sends only what this step lists. Whatever is released without differential
        privacy is outside the guarantee; each data steward sees it listed before approving.
      </p>
      {mode === 'none' ? (
        <Notice tone="warning">
          This plan uses no differential privacy: the model updates themselves are released without it too.
        </Notice>
      ) : null}
      {mode === 'dp-fedavg' ? (
        <Notice tone="warning">
          With DP-FedAvg the hub adds the noise: each hospital&apos;s clipped update reaches the hub without it.
        </Notice>
      ) : null}
      <Field
        path="release.evaluation.mode"
        name="release.evaluation"
        onValueChange={chosen}
        label="Evaluation results"
        hint={
          r.evaluation === 'exact'
            ? 'Released without differential privacy: test-split loss, accuracy, AUC, and the number of test records and of positives.'
            : r.evaluation === 'noisy'
              ? 'Per true label, a histogram of the predicted probability over the test records, each count with noise; the hub shows accuracy and AUC estimated from them, and no loss.'
              : mode === 'dp-sgd'
                ? undefined
                : 'Noisy evaluation protects single records: it needs DP-SGD.'
        }
      >
        {(p) => (
          <select {...p}>
            <option value="none">{EVALUATION_CHOICES.none}</option>
            {/* Offered with DP-SGD only; a plan that already holds it keeps it visible, with its problem. */}
            <option value="noisy" disabled={mode !== 'dp-sgd' && r.evaluation !== 'noisy'}>
              {mode === 'dp-sgd' ? EVALUATION_CHOICES.noisy : 'Noisy score histograms (needs DP-SGD)'}
            </option>
            <option value="exact">{EVALUATION_CHOICES.exact}</option>
          </select>
        )}
      </Field>
      {r.evaluation !== 'none' ? (
        <div className="grid-2">
          <Field
            path="release.evaluation.rounds"
            name="release.evaluationRounds"
            onValueChange={chosen}
            label="Models evaluated"
          >
            {(p) => (
              <select {...p}>
                <option value="final">The final model only</option>
                <option value="every">Every round&apos;s input model and the final model</option>
              </select>
            )}
          </Field>
          {r.evaluation === 'noisy' ? (
            <NumberField
              path="release.evaluation.scoreBins"
              name="release.scoreBins"
              onValueChange={chosen}
              label="Score bins"
              hint="2 to 20 equal bins of the predicted probability. Fewer bins: less noise in the totals, a coarser AUC."
            />
          ) : null}
        </div>
      ) : null}
      {r.evaluation === 'noisy' && mode === 'dp-sgd' ? <DraftEvaluationNoise draft={draft} /> : null}
      <Field
        path="release.trainingExamples"
        name="release.trainingExamples"
        onValueChange={chosen}
        label="Training-record count"
        hint={
          r.trainingExamples === 'exact'
            ? 'Released without differential privacy: the exact number of records each hospital trained on, used to weight the average.'
            : 'The hub averages the updates with equal weights.'
        }
      >
        {(p) => (
          <select {...p}>
            <option value="none">None: equal weights in the average</option>
            <option value="exact">Exact count: released without differential privacy</option>
          </select>
        )}
      </Field>
      {r.chosen ? (
        <button
          type="button"
          className="button button-secondary button-small"
          onClick={() => {
            setValue('release', defaultReleaseDraft(getValues('privacy.mode')));
            touch('release.evaluation.mode');
          }}
        >
          Use the defaults for this privacy choice
        </button>
      ) : (
        <p className="hint">
          These are the defaults for this privacy choice; they follow it if you change it, until you choose here.
        </p>
      )}
    </>
  );
}

function releaseFieldPaths(d: PlanDraft): string[] {
  const paths = ['release.evaluation.mode'];
  if (d.release.evaluation !== 'none') paths.push('release.evaluation.rounds');
  if (d.release.evaluation === 'noisy') paths.push('release.evaluation.scoreBins');
  paths.push('release.trainingExamples');
  return paths;
}

export const releaseStep: WizardStep = {
  id: 'release',
  title: 'Releases',
  owns: ['release'],
  fieldPaths: releaseFieldPaths,
  Component: ReleaseFields,
};
