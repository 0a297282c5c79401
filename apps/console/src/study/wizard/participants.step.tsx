import { useFormContext } from 'react-hook-form';
import type { PlanDraft } from '../../lib/plan-draft.js';
import { useWizard } from './wizard-context.js';
import { Field, Group, NumberField } from './wizard-fields.js';
import type { WizardStep } from './wizard-step.js';

/** The registered silos to invite; a suspended one cannot be newly invited, and ids not listed stay invited. */
function InvitedSilos() {
  const { setValue } = useFormContext<PlanDraft>();
  const { draft, silos, touch } = useWizard();
  const known = new Set(silos.map((s) => s.id));
  const unknown = draft.silos.filter((id) => !known.has(id));
  return (
    <Group path="silos" legend={`Invited silos (${draft.silos.length} of ${silos.length})`}>
      {silos.length === 0 ? (
        <p className="muted">No silo is registered yet: register the hospitals first.</p>
      ) : (
        <ul className="checklist">
          {silos.map((s) => {
            const checked = draft.silos.includes(s.id);
            const id = `invite-${s.id}`;
            return (
              <li key={s.id}>
                <input
                  id={id}
                  type="checkbox"
                  checked={checked}
                  disabled={s.status === 'suspended' && !checked}
                  onChange={(e) => {
                    const invited = draft.silos;
                    setValue('silos', e.target.checked ? [...invited, s.id] : invited.filter((x) => x !== s.id));
                    touch('silos');
                  }}
                />
                <label htmlFor={id}>
                  {s.name}{' '}
                  <span className="muted small">
                    {s.status}
                    {s.status === 'suspended' ? ' (cannot be invited)' : ''}
                  </span>
                </label>
              </li>
            );
          })}
        </ul>
      )}
      {unknown.length > 0 ? <p className="muted small">Also invited, not listed: {unknown.join(', ')}</p> : null}
    </Group>
  );
}

function ParticipantsFields() {
  return (
    <>
      <InvitedSilos />
      <div className="grid-2">
        <NumberField
          path="participation.minSilosPerRound"
          name="participation.minSilosPerRound"
          label="Minimum silos per round"
        />
        <NumberField
          path="participation.roundDeadlineSeconds"
          name="participation.roundDeadlineSeconds"
          label="Round deadline (seconds)"
        />
        <NumberField
          path="participation.maxRoundRetries"
          name="participation.maxRoundRetries"
          label="Retries of a round that misses its minimum"
        />
        <Field path="participation.onSiloFailure" name="participation.onSiloFailure" label="When a silo fails">
          {(p) => (
            <select {...p}>
              <option value="continue">Continue without it</option>
              <option value="fail-study">Fail the study</option>
            </select>
          )}
        </Field>
      </div>
    </>
  );
}

export const participantsStep: WizardStep = {
  id: 'participants',
  title: 'Participants',
  owns: ['participation', 'silos'],
  fieldPaths: () => [
    'silos',
    'participation.minSilosPerRound',
    'participation.roundDeadlineSeconds',
    'participation.maxRoundRetries',
    'participation.onSiloFailure',
  ],
  Component: ParticipantsFields,
};
