import { describePlan } from '@tessera/protocol';
import type { PlacedProblem } from '../../lib/plan-problems.js';
import { plannedEvaluationNoise } from '../../lib/privacy-accounting.js';
import { ReleaseConsent } from '../release-consent.js';
import { useWizard } from './wizard-context.js';
import type { WizardStep } from './wizard-step.js';

/** Every problem in plain words, naming its field, each a button to that field. */
function ProblemLinks({ problems, onJump }: { problems: PlacedProblem[]; onJump: (p: PlacedProblem) => void }) {
  return (
    <ul className="problem-list">
      {problems.map((p) => (
        <li key={p.problem}>
          <button type="button" className="link-button" onClick={() => onJump(p)}>
            {p.plain}
          </button>
        </li>
      ))}
    </ul>
  );
}

/** The invited silos by name (the plan names them by id), each with its status when it is not plainly enrolled. */
function InvitedSilos({ ids }: { ids: readonly string[] }) {
  const { silos } = useWizard();
  const byId = new Map(silos.map((s) => [s.id, s]));
  return (
    <>
      <h3 id="review-invited">Invited silos ({ids.length})</h3>
      <ul className="invited-silos" aria-labelledby="review-invited">
        {ids.map((id) => {
          const silo = byId.get(id);
          return (
            <li key={id}>
              {silo ? silo.name : <span className="muted">a silo this hub does not list</span>}{' '}
              <span className="mono small muted">{id}</span>
              {silo && silo.status !== 'enrolled' ? <span className="small"> · {silo.status}</span> : null}
            </li>
          );
        })}
      </ul>
    </>
  );
}

/** The plan as each steward will read it, or what keeps it from being sent. */
function ReviewSummary() {
  const { problems, plan, jumpTo } = useWizard();
  if (!plan) {
    return (
      <div className="notice notice-error" role="alert">
        <p>
          <strong>The plan has {problems.length} problem(s).</strong> Fix them before sending it:
        </p>
        <ProblemLinks problems={problems} onJump={jumpTo} />
      </div>
    );
  }
  return (
    <>
      <ReleaseConsent plan={plan} evaluationNoise={plannedEvaluationNoise(plan)} />
      <InvitedSilos ids={plan.silos} />
      <p>This is what each invited silo&apos;s data steward will read and approve, byte for byte:</p>
      <pre className="code plan-text" tabIndex={0}>
        {describePlan(plan).join('\n')}
      </pre>
      {problems.length > 0 ? (
        <div className="notice notice-error" role="alert">
          <ProblemLinks problems={problems} onJump={jumpTo} />
        </div>
      ) : null}
    </>
  );
}

/** The last step: nothing to edit; the shell sends the plan from here. */
export const reviewStep: WizardStep = {
  id: 'review',
  title: 'Review',
  owns: [],
  fieldPaths: () => [],
  Component: ReviewSummary,
};
