import type { RoundView, StudyView } from '@tessera/protocol';
import { formatSignificant } from '../lib/format.js';
import { gaugeReading } from '../lib/privacy-gauge.js';
import { privacyBudgets } from '../lib/round-metrics.js';

/**
 * One gauge per participating silo: ε spent against the study's target (from the silos' own reports). Red only when a
 * silo spent beyond the plan or the target; spending the planned budget reads "complete" (lib/privacy-gauge.ts).
 */
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
          const reading = gaugeReading({
            spent: b.spent,
            target: b.target,
            planned: study.privacyCost?.epsilon ?? null,
            trainingRounds: trainingRoundsOf(rounds, b.siloId),
            plannedRounds: study.plan.training.rounds,
          });
          const fraction = reading.fraction;
          return (
            <li key={b.siloId} className="gauge" data-silo={b.siloName}>
              <span className="gauge-name">{b.siloName}</span>
              {b.target === null ? (
                <span className="gauge-none">no DP</span>
              ) : (
                <>
                  <div
                    className={`gauge-bar gauge-${reading.state}`}
                    role="meter"
                    aria-label={`Privacy budget spent by ${b.siloName}`}
                    aria-valuemin={0}
                    aria-valuemax={b.target}
                    aria-valuenow={b.spent ?? 0}
                    aria-valuetext={`ε ${b.spent === null ? 0 : formatSignificant(b.spent)} of ${b.target}: ${reading.label}`}
                  >
                    <span style={{ width: `${(fraction * 100).toFixed(1)}%` }} />
                  </div>
                  <span className="gauge-value">
                    ε {b.spent === null ? '0' : formatSignificant(b.spent, 3)} / {b.target}
                  </span>
                  <span className={`gauge-state gauge-state-${reading.state}`}>{reading.label}</span>
                </>
              )}
            </li>
          );
        })}
      </ul>
    </div>
  );
}

/** The largest training-round count a silo reported in this study (null when it never reported one). */
function trainingRoundsOf(rounds: readonly RoundView[], siloId: string): number | null {
  let n: number | null = null;
  for (const r of rounds) {
    for (const part of r.participants) {
      const t = part.siloId === siloId ? part.privacy?.trainingRounds : undefined;
      if (typeof t === 'number' && (n === null || t > n)) n = t;
    }
  }
  return n;
}
