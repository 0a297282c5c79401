import { useId } from 'react';
import { describeRelease, releasedWithoutDp, type StudyPlan } from '@tessera/protocol';
import { formatSignificant } from '../lib/format.js';
import type { Calculation, EvaluationNoise } from '../lib/privacy-accounting.js';

/** What a steward reads when nothing leaves a silo outside the DP guarantee. */
export const NOTHING_WITHOUT_DP = 'Nothing: everything a hospital sends is covered by the privacy guarantee.';

/**
 * What a plan lets each hospital send, as its data steward consents to it: the list of everything released WITHOUT
 * differential privacy (releasedWithoutDp of @tessera/protocol, the same words the agent and the compliance report
 * print), the release plan in words, and the noise of a noisy evaluation.
 */
export function ReleaseConsent({
  plan,
  evaluationNoise,
}: {
  plan: StudyPlan;
  /** The noisy evaluation's noise (null: the plan has none). */
  evaluationNoise: Calculation<EvaluationNoise> | null;
}) {
  const id = useId();
  const withoutDp = releasedWithoutDp(plan);
  return (
    <section
      className={`notice consent ${withoutDp.length > 0 ? 'notice-warning' : 'notice-success'}`}
      aria-labelledby={`${id}-title`}
      data-testid="released-without-dp"
    >
      <h3 id={`${id}-title`} className="notice-title">
        Released without differential privacy
      </h3>
      {withoutDp.length > 0 ? (
        <ul className="consent-list">
          {withoutDp.map((item) => (
            <li key={item}>{item}</li>
          ))}
        </ul>
      ) : (
        <p className="consent-nothing">{NOTHING_WITHOUT_DP}</p>
      )}
      <p className="consent-release">
        <strong>Release plan:</strong> {describeRelease(plan)}.
      </p>
      {evaluationNoise ? <EvaluationNoiseLine noise={evaluationNoise} /> : null}
    </section>
  );
}

function EvaluationNoiseLine({ noise }: { noise: Calculation<EvaluationNoise> }) {
  if (!noise.ok) {
    return <p className="consent-noise">The noisy evaluation&apos;s noise cannot be derived: {noise.message}</p>;
  }
  const n = noise.value;
  return (
    <p className="consent-noise" data-noise-stddev={String(n.noiseStddev)}>
      <strong>Noisy evaluation:</strong> each histogram count gets discrete Gaussian noise of standard deviation{' '}
      {formatSignificant(n.noiseStddev)} records, over {n.releases} release{n.releases === 1 ? '' : 's'}
      {n.epsilon === null ? '' : ` (ε = ${formatSignificant(n.epsilon)} for the evaluation releases alone)`};{' '}
      {n.source === 'hub'
        ? 'as the hub derived it for this plan.'
        : 'computed by this console from the plan with the hub’s accountant (the hub and each agent derive it again).'}
    </p>
  );
}
