import { useFormContext } from 'react-hook-form';
import { SecureAggregationPlan, secureAggregationProblems, type StudyPlan } from '@tessera/protocol';
import {
  draftToPlan,
  numberOf,
  proposedSecureAggregationThreshold,
  type AggregatorKind,
  type PlanDraft,
} from '../../lib/plan-draft.js';
import { plainProblem, splitProblem, subjectOfPath } from '../../lib/plan-problems.js';
import { Notice } from '../../ui/feedback.js';
import { useWizard } from './wizard-context.js';
import { Field, NumberField } from './wizard-fields.js';
import type { WizardStep } from './wizard-step.js';

/** Each aggregator as the designer picks it: what it defends against, in a few words (docs/aggregation.md). */
const AGGREGATORS: Record<AggregatorKind, string> = {
  fedavg: 'FedAvg: the mean (every silo trusted)',
  'coordinate-median': 'Coordinate median: robust to fewer than half bad silos per coordinate',
  'trimmed-mean': 'Trimmed mean: drops the β most extreme values at each end',
  krum: 'Krum / Multi-Krum: tolerates f arbitrary updates (needs n > 2f + 2)',
  'geometric-median': 'Geometric median: robust to fewer than half bad silos',
};

function AggregatorParameters({ kind }: { kind: AggregatorKind }) {
  switch (kind) {
    case 'trimmed-mean':
      return (
        <NumberField
          path="aggregation.aggregator.trimFraction"
          name="aggregation.trimFraction"
          label="Trim fraction β"
          hint="Below 0.5; at least 1 / (silos per round) so that something is trimmed."
        />
      );
    case 'krum':
      return (
        <>
          <NumberField
            path="aggregation.aggregator.byzantine"
            name="aggregation.byzantine"
            label="Byzantine silos tolerated f"
          />
          <NumberField
            path="aggregation.aggregator.selected"
            name="aggregation.selected"
            label="Updates averaged m"
            hint="Empty or 1: Krum keeps one update. More: Multi-Krum averages the m best."
          />
        </>
      );
    case 'geometric-median':
      return (
        <>
          <NumberField
            path="aggregation.aggregator.tolerance"
            name="aggregation.tolerance"
            label="Tolerance"
            hint="Empty: 1e-6."
          />
          <NumberField
            path="aggregation.aggregator.maxIterations"
            name="aggregation.maxIterations"
            label="Iterations at most"
            hint="Empty: 100."
          />
        </>
      );
    default:
      return null;
  }
}

/** The proposed threshold for the draft's neighbours (k typed, else the complete graph of the invited silos). */
function proposedThreshold(d: PlanDraft): number | null {
  const typed = numberOf(d.secureAggregation.neighbourCount);
  const k = typed !== undefined ? typed : d.silos.length - 1;
  return Number.isInteger(k) && k >= 2 ? proposedSecureAggregationThreshold(k) : null;
}

/**
 * What in the rest of the plan secure aggregation cannot run with, as the shared plan check
 * (secureAggregationProblems of @tessera/protocol) reports it, in plain words. The block's own problems show at its
 * fields instead; and only once those fields are valid, since the check reads them.
 */
function secureAggregationConflicts(d: PlanDraft): string[] {
  const candidate = draftToPlan(d) as StudyPlan;
  if (!SecureAggregationPlan.safeParse(candidate.secureAggregation).success) return [];
  return secureAggregationProblems(candidate).flatMap((problem) => {
    const { path, message } = splitProblem(problem);
    if (path === 'secureAggregation' || path.startsWith('secureAggregation.')) return [];
    return [plainProblem(subjectOfPath(path), message)];
  });
}

/** The opt-in to secure aggregation, its parameters, and what in the plan it cannot run with. */
function SecureAggregationFields() {
  const { getValues, setValue } = useFormContext<PlanDraft>();
  const { draft } = useWizard();
  const sa = draft.secureAggregation;
  const proposed = proposedThreshold(draft);
  const conflicts = sa.enabled ? secureAggregationConflicts(draft) : [];
  const onOptIn = () => {
    // Opting in proposes the threshold for the invited silos; one already typed is kept.
    if (getValues('secureAggregation.enabled') && getValues('secureAggregation.threshold').trim() === '') {
      const t = proposedThreshold(getValues());
      if (t !== null) setValue('secureAggregation.threshold', String(t), { shouldDirty: true });
    }
  };
  return (
    <>
      <h3>Secure aggregation</h3>
      <Field
        path="secureAggregation"
        name="secureAggregation.enabled"
        onValueChange={onOptIn}
        label="Secure aggregation (the hub sees only the sum)"
        className="field-check"
      >
        {(p) => <input {...p} type="checkbox" />}
      </Field>
      <p className="hint">
        Each silo clips its update, masks it and uploads only the masked version; the masks cancel in the sum, so the
        hub learns the sum of the updates and never one silo&apos;s. FedAvg then averages with equal weights. The sum
        itself is not made private.
      </p>
      {sa.enabled ? (
        <>
          <div className="grid-3">
            <NumberField
              path="secureAggregation.neighbourCount"
              name="secureAggregation.neighbourCount"
              label="Neighbours per silo k"
              hint="Empty: the complete graph (every silo pairs with every other)."
            />
            <NumberField
              path="secureAggregation.threshold"
              name="secureAggregation.threshold"
              label="Threshold t"
              hint={
                proposed === null
                  ? 'A round is unmasked with t + 1 surviving silos.'
                  : `A round is unmasked with t + 1 surviving silos. Proposed for these silos: ${proposed}.`
              }
            />
            <NumberField
              path="secureAggregation.modulusBits"
              name="secureAggregation.modulusBits"
              label="Modulus bits"
              hint="8 to 32; 32 costs the size of a float32 upload."
            />
            <NumberField
              path="secureAggregation.clipNorm"
              name="secureAggregation.clipNorm"
              label="Clip norm C"
              hint="Every silo scales its update down to this L2 norm before it is masked."
            />
          </div>
          {conflicts.length > 0 ? (
            <Notice tone="warning">
              <p>Secure aggregation cannot run with this plan yet:</p>
              <ul className="problem-list" aria-label="What secure aggregation cannot run with">
                {conflicts.map((c) => (
                  <li key={c}>{c}</li>
                ))}
              </ul>
            </Notice>
          ) : null}
        </>
      ) : null}
    </>
  );
}

/** How the hub combines the round's updates and screens them; the steward sees the choice in the plan. */
function AggregationFields() {
  const { register } = useFormContext<PlanDraft>();
  const { draft } = useWizard();
  const a = draft.aggregation;
  return (
    <>
      <p className="hint">
        How the hub combines the silos&apos; updates each round, and whether it screens them for outliers. FedAvg trusts
        every silo; the robust aggregators bound what a few broken or malicious silos can do, and are unweighted.
      </p>
      {draft.privacy.mode === 'dp-fedavg' ? (
        <Notice tone="info">
          DP-FedAvg calibrates its noise to the sum of the updates: only FedAvg (with a fixed norm bound if you want
          one) and screening without exclusion keep its guarantee.
        </Notice>
      ) : null}
      <div className="grid-3">
        <Field path="aggregation.aggregator.kind" name="aggregation.kind" label="Aggregator">
          {(p) => (
            <select {...p}>
              {(Object.keys(AGGREGATORS) as AggregatorKind[]).map((k) => (
                <option key={k} value={k}>
                  {AGGREGATORS[k]}
                </option>
              ))}
            </select>
          )}
        </Field>
        <AggregatorParameters kind={a.kind} />
      </div>
      <h3>Norm bound</h3>
      <div className="grid-3">
        <Field path="aggregation.normBound.mode" name="aggregation.normBound" label="Scale every update down to">
          {(p) => (
            <select {...p}>
              <option value="none">No bound</option>
              <option value="fixed">A fixed L2 norm</option>
              <option value="median-multiple">A multiple of the round&apos;s median norm</option>
            </select>
          )}
        </Field>
        {a.normBound === 'fixed' ? (
          <NumberField path="aggregation.normBound.maxNorm" name="aggregation.maxNorm" label="Largest L2 norm" />
        ) : null}
        {a.normBound === 'median-multiple' ? (
          <NumberField
            path="aggregation.normBound.multiplier"
            name="aggregation.multiplier"
            label="Multiple of the median norm"
            hint="At least 1."
          />
        ) : null}
      </div>
      <h3>Screening</h3>
      <div className="field field-check">
        <input id="plan-screening" type="checkbox" {...register('aggregation.screening')} />
        <label htmlFor="plan-screening">
          Screen every update (its norm, its cosines to the aggregate and to the previous global update)
        </label>
      </div>
      {a.screening ? (
        <div className="grid-3">
          <NumberField
            path="screening.threshold"
            name="aggregation.threshold"
            label="Threshold (robust deviations)"
            hint="3.5 is the usual cut-off; small models need more (docs/aggregation.md)."
          />
          <Field
            path="screening.exclude"
            name="aggregation.exclude"
            label="Leave flagged updates out of the aggregate"
            className="field-check"
          >
            {(p) => <input {...p} type="checkbox" />}
          </Field>
        </div>
      ) : null}
      <SecureAggregationFields />
    </>
  );
}

/** The plan paths of the step's fields for this draft, in display order. */
function aggregationFieldPaths(d: PlanDraft): string[] {
  const a = d.aggregation;
  const paths = ['aggregation.aggregator.kind'];
  if (a.kind === 'trimmed-mean') paths.push('aggregation.aggregator.trimFraction');
  if (a.kind === 'krum') paths.push('aggregation.aggregator.byzantine', 'aggregation.aggregator.selected');
  if (a.kind === 'geometric-median') {
    paths.push('aggregation.aggregator.tolerance', 'aggregation.aggregator.maxIterations');
  }
  paths.push('aggregation.normBound.mode');
  if (a.normBound === 'fixed') paths.push('aggregation.normBound.maxNorm');
  if (a.normBound === 'median-multiple') paths.push('aggregation.normBound.multiplier');
  if (a.screening) paths.push('screening.threshold', 'screening.exclude');
  paths.push('secureAggregation');
  if (d.secureAggregation.enabled) {
    paths.push(
      'secureAggregation.neighbourCount',
      'secureAggregation.threshold',
      'secureAggregation.modulusBits',
      'secureAggregation.clipNorm',
    );
  }
  return paths;
}

export const aggregationStep: WizardStep = {
  id: 'aggregation',
  title: 'Aggregation',
  owns: ['aggregation', 'screening', 'secureAggregation'],
  fieldPaths: aggregationFieldPaths,
  Component: AggregationFields,
};
