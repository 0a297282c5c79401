import { useFormContext } from 'react-hook-form';
import { numberOf, withPrivacyMode, type PlanDraft, type PrivacyMode } from '../../lib/plan-draft.js';
import type { PrivacyMechanismShape } from '../../lib/privacy-accounting.js';
import { deltaWarning } from '../../lib/privacy-plan-checks.js';
import { PrivacyCalculator } from '../privacy-calculator.js';
import { useWizard } from './wizard-context.js';
import { Field, NumberField } from './wizard-fields.js';
import type { WizardStep } from './wizard-step.js';

/** The mechanism for the calculator, once the numbers it needs parse. */
function mechanismShape(d: PlanDraft): PrivacyMechanismShape | null {
  if (d.privacy.mode === 'none') return null;
  const rounds = numberOf(d.training.rounds);
  const localEpochs = numberOf(d.training.localEpochs);
  const delta = numberOf(d.privacy.delta);
  const samplingRate = numberOf(d.privacy.samplingRate);
  const ok = (x: number | undefined): x is number => x !== undefined && Number.isFinite(x) && x > 0;
  if (!ok(rounds) || !ok(localEpochs) || !ok(delta) || delta >= 1) return null;
  if (d.privacy.mode === 'dp-sgd' && (!ok(samplingRate) || samplingRate > 1)) return null;
  return {
    mode: d.privacy.mode,
    rounds: Math.round(rounds),
    localEpochs: Math.round(localEpochs),
    ...(d.privacy.mode === 'dp-sgd' ? { samplingRate } : {}),
    delta,
  };
}

/** σ: derived by the hub from the target ε, or a fixed value typed here (or taken from the calculator). */
function NoiseMultiplierField() {
  const { register } = useFormContext<PlanDraft>();
  const { draft } = useWizard();
  const fixed = draft.privacy.noise === 'fixed';
  return (
    <Field
      path="privacy.noiseMultiplier"
      {...(fixed ? { name: 'privacy.noiseMultiplier' as const } : {})}
      label="Noise multiplier σ (relative to C)"
    >
      {(props) => (
        <div className="row">
          <select className="input-auto" aria-label="How σ is chosen" {...register('privacy.noise')}>
            <option value="derive">Derived by the hub from the target ε</option>
            <option value="fixed">Fixed value</option>
          </select>
          {fixed ? (
            <input key="fixed" {...props} inputMode="decimal" className="input-narrow" />
          ) : (
            <input key="derive" {...props} className="input-narrow" value="derive" readOnly aria-readonly="true" />
          )}
        </div>
      )}
    </Field>
  );
}

/**
 * DP-FedAvg's noise added by each silo instead of the hub (distributed DP): the only DP-FedAvg secure aggregation
 * allows. Its problems (no secure aggregation, another clip norm) show here, at `privacy.noise`.
 */
function DistributedNoiseField() {
  const { draft } = useWizard();
  return (
    <>
      <Field
        path="privacy.noise"
        name="privacy.distributed"
        label="Noise added by each silo under secure aggregation (distributed DP)"
        className="field-check"
        hint={
          'Each silo adds its share of discrete Gaussian noise to its update before masking, so no one — the hub ' +
          'included — sees an update without noise; any t of the shares (the secure-aggregation threshold) carry the ' +
          'whole noise. Needs secure aggregation (Aggregation step) with the same clipping norm C.'
        }
      >
        {(props) => <input {...props} type="checkbox" />}
      </Field>
      {draft.secureAggregation.enabled && !draft.privacy.distributed ? (
        <div className="notice notice-warning" role="note" aria-label="About the noise">
          With secure aggregation the hub never sees an individual update, so it cannot add DP-FedAvg&apos;s noise: tick
          the box above for each silo to add its share.
        </div>
      ) : null}
    </>
  );
}

/** A comment on a δ that protects little (δ ≥ 1/n, or ≥ 0.1); a warning, not a refusal. */
function DeltaWarning() {
  const { draft } = useWizard();
  const p = draft.privacy;
  if (p.mode === 'none') return null;
  const delta = numberOf(p.delta);
  const warning = delta === undefined ? null : deltaWarning(p.mode, delta, draft.silos.length);
  return warning ? (
    <div className="notice notice-warning" role="note" aria-label="About δ">
      {warning}
    </div>
  ) : null;
}

function PrivacyFields() {
  const { getValues, setValue } = useFormContext<PlanDraft>();
  const { draft, touch } = useWizard();
  const p = draft.privacy;
  return (
    <>
      <Field
        path="privacy.mode"
        name="privacy.mode"
        // A release nobody chose follows the new mode's default (withPrivacyMode).
        onValueChange={(mode) => setValue('release', withPrivacyMode(getValues(), mode as PrivacyMode).release)}
        label="Differential privacy"
      >
        {(props) => (
          <select {...props}>
            <option value="none">None: updates are sent without noise</option>
            <option value="dp-sgd">DP-SGD: unit = one patient record</option>
            <option value="dp-fedavg">DP-FedAvg: unit = a whole silo</option>
          </select>
        )}
      </Field>
      {p.mode === 'none' ? (
        <div className="notice notice-warning">
          Without differential privacy, the model updates carry no formal guarantee. Stewards see this stated plainly
          before they approve.
        </div>
      ) : (
        <>
          <div className="grid-3">
            <NumberField path="privacy.targetEpsilon" name="privacy.targetEpsilon" label="Target ε (whole study)" />
            <NumberField
              path="privacy.delta"
              name="privacy.delta"
              label="δ"
              hint={p.mode === 'dp-sgd' ? 'Well below 1 / records per silo.' : 'Well below 1 / invited silos.'}
            />
            <NumberField path="privacy.clipNorm" name="privacy.clipNorm" label="Clipping norm C" />
            {p.mode === 'dp-sgd' ? (
              <NumberField
                path="privacy.samplingRate"
                name="privacy.samplingRate"
                label="Sampling rate q"
                hint="Poisson probability per record and step."
              />
            ) : null}
          </div>
          <NoiseMultiplierField />
          {p.mode === 'dp-fedavg' ? <DistributedNoiseField /> : null}
          <DeltaWarning />
          <PrivacyCalculator
            shape={mechanismShape(draft)}
            targetEpsilon={p.targetEpsilon}
            noiseMultiplier={p.noiseMultiplier}
            onUseNoise={(sigma) => {
              setValue('privacy.noise', 'fixed');
              setValue('privacy.noiseMultiplier', String(sigma));
              touch('privacy.noiseMultiplier');
            }}
          />
          <div className="notice notice-info">
            The hub prices the plan when it is saved, before any steward approves it: it derives σ when asked to and
            refuses a target it cannot meet. This step runs the same pricing and keeps you here, with the reason, until
            the target can be met.
          </div>
        </>
      )}
    </>
  );
}

function privacyFieldPaths(d: PlanDraft): string[] {
  if (d.privacy.mode === 'none') return ['privacy.mode'];
  const paths = [
    'privacy.mode',
    'privacy.targetEpsilon',
    'privacy.delta',
    'privacy.clipNorm',
    'privacy.noiseMultiplier',
  ];
  if (d.privacy.mode === 'dp-sgd') paths.push('privacy.samplingRate');
  if (d.privacy.mode === 'dp-fedavg') paths.push('privacy.noise');
  return paths;
}

export const privacyStep: WizardStep = {
  id: 'privacy',
  title: 'Privacy',
  owns: ['privacy'],
  fieldPaths: privacyFieldPaths,
  Component: PrivacyFields,
};
