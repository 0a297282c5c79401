import type { RoundView, StudyView } from '@tessera/protocol';
import { formatSignificant } from '../lib/format.js';
import { privacyBudgets } from '../lib/round-metrics.js';

/** One gauge per participating silo: ε spent against the study's target (from the silos' own reports). */
export function PrivacyBudget({ study, rounds }: { study: StudyView; rounds: RoundView[] }) {
  const budgets = privacyBudgets(study, rounds);
  const p = study.plan.privacy;
  return (
    <div>
      <p className="hint">
        {p.mode === 'none'
          ? 'This plan uses no differential privacy: there is no budget to spend, and no formal guarantee.'
          : `${p.mode === 'dp-sgd' ? 'DP-SGD, unit: one record' : 'DP-FedAvg, unit: a whole silo'}; target ε = ${p.targetEpsilon} at δ = ${p.delta}, for the whole study.`}
      </p>
      {study.privacyCost ? (
        <p className="hint">
          Mechanism priced by the hub before approval: σ = {formatSignificant(study.privacyCost.noiseMultiplier)},
          clipping norm {study.privacyCost.clipNorm}, q = {study.privacyCost.samplingRate},{' '}
          {study.privacyCost.stepsPerRound} steps per round × {study.privacyCost.rounds} rounds → planned ε ={' '}
          {formatSignificant(study.privacyCost.epsilon)} ({study.privacyCost.accountant}).
        </p>
      ) : null}
      <ul className="gauges">
        {budgets.map((b) => {
          const fraction = b.target && b.spent !== null ? Math.min(1, b.spent / b.target) : 0;
          const tone = fraction >= 0.9 ? 'danger' : fraction >= 0.7 ? 'warning' : 'ok';
          return (
            <li key={b.siloId} className="gauge" data-silo={b.siloName}>
              <span className="gauge-name">{b.siloName}</span>
              {b.target === null ? (
                <span className="gauge-none">no DP</span>
              ) : (
                <>
                  <div
                    className={`gauge-bar gauge-${tone}`}
                    role="meter"
                    aria-label={`Privacy budget spent by ${b.siloName}`}
                    aria-valuemin={0}
                    aria-valuemax={b.target}
                    aria-valuenow={b.spent ?? 0}
                    aria-valuetext={`ε ${b.spent === null ? 0 : formatSignificant(b.spent)} of ${b.target}`}
                  >
                    <span style={{ width: `${(fraction * 100).toFixed(1)}%` }} />
                  </div>
                  <span className="gauge-value">
                    ε {b.spent === null ? '0' : formatSignificant(b.spent, 3)} / {b.target}
                  </span>
                </>
              )}
            </li>
          );
        })}
      </ul>
    </div>
  );
}
