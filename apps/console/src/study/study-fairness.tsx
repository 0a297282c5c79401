import { fairnessView, type FairnessView, type RoundView, type StudyPlan } from '@tessera/protocol';
import { formatMetric } from '../lib/format.js';
import { EmptyState } from '../ui/feedback.js';

/** The final evaluation round that closed (the last one, if an evaluation was retried). */
function finalEvaluation(rounds: readonly RoundView[]): RoundView | undefined {
  return [...rounds].reverse().find((r) => r.kind === 'evaluate' && r.status === 'closed');
}

/** A difference in points (1 point = 0.01 of a fraction), signed; an en dash when unknown. */
function points(value: number | null): string {
  if (value === null) return '—';
  const p = value * 100;
  return `${p > 0 ? '+' : p < 0 ? '−' : '±'}${Math.abs(p).toFixed(1)}`;
}

function Summary({ f }: { f: FairnessView }) {
  const metric = f.metric === 'accuracy' ? 'Accuracy' : 'R²';
  return (
    <dl className="facts">
      <dt>Worst silo</dt>
      <dd>{f.worst ? `${f.worst.siloName}: ${formatMetric(f.worst.value)}` : '—'}</dd>
      <dt>Best silo</dt>
      <dd>{f.best ? `${f.best.siloName}: ${formatMetric(f.best.value)}` : '—'}</dd>
      <dt>Gap</dt>
      <dd>{f.gap === null ? '—' : `${points(f.gap)} points`}</dd>
      {f.summary.personalized ? (
        <>
          <dt>{metric}, worst silo</dt>
          <dd>
            global {formatMetric(f.summary.global?.worst)} → personalized {formatMetric(f.summary.personalized.worst)}
          </dd>
          <dt>{metric}, mean over silos</dt>
          <dd>
            global {formatMetric(f.summary.global?.mean)} → personalized {formatMetric(f.summary.personalized.mean)}
          </dd>
        </>
      ) : null}
    </dl>
  );
}

/**
 * The fairness view of a study (docs/personalization.md), its own section of the study page: from the final
 * evaluation each silo reported, the worst and best silo under the global model and their gap; with
 * plan.personalization each silo's personalized model beside it and, with a local baseline, each silo's change from
 * the model it could have trained alone. The figures are what the silos released (noisy estimates under DP).
 */
export function StudyFairness({ plan, rounds }: { plan: StudyPlan; rounds: readonly RoundView[] }) {
  const round = finalEvaluation(rounds);
  const personalization = plan.personalization;
  return (
    <section id="fairness" className="card" aria-labelledby="fairness-title">
      <h2 id="fairness-title">Fairness across silos</h2>
      <p className="hint">
        {personalization
          ? personalization.method === 'select'
            ? `At the final evaluation each silo chooses its personalized model (the global model, the model fine-tuned for ${personalization.epochs} epoch(s), a model trained on its own records alone, or a mixture of the global and local-only models) by cross-validation on its own training records, and evaluates it beside the global model${personalization.localBaseline ? ', and also the local-only model' : ''}; those models and the choice stay at the silo.`
            : `At the final evaluation each silo fine-tunes the final model on its own training records for ${personalization.epochs} epoch(s) and evaluates it beside the global model${personalization.localBaseline ? ', and also a model trained on its own records alone' : ''}; those models stay at the silo.`
          : 'This plan does not personalize: the view compares the silos under the final global model.'}
      </p>
      {round === undefined || plan.release.evaluation.mode === 'none' ? (
        <EmptyState title="No final evaluation yet">
          {plan.release.evaluation.mode === 'none'
            ? 'This plan releases no evaluation: the hub has no figure per silo.'
            : 'Shown once the final evaluation round closes.'}
        </EmptyState>
      ) : (
        <FairnessTable
          f={fairnessView(
            [...round.participants]
              .sort((a, b) => a.siloName.localeCompare(b.siloName))
              .map((p) => ({
                siloId: p.siloId,
                siloName: p.siloName,
                global: p.evaluation,
                personalized: p.personalization?.personalized ?? null,
                localBaseline: p.personalization?.localBaseline ?? null,
              })),
          )}
        />
      )}
    </section>
  );
}

function FairnessTable({ f }: { f: FairnessView }) {
  const personalized = f.summary.personalized !== null;
  const baseline = f.summary.localBaseline !== null;
  return (
    <>
      {f.noisy ? (
        <p className="hint" role="note">
          Figures marked ≈ are estimates from differentially private releases (noisy score histograms).
        </p>
      ) : null}
      <Summary f={f} />
      <div className="table-wrap">
        <table className="table">
          <caption className="visually-hidden">
            {f.metric === 'accuracy' ? 'Accuracy' : 'R²'} per silo at the final evaluation
          </caption>
          <thead>
            <tr>
              <th scope="col">Silo</th>
              <th scope="col">Global model</th>
              {personalized ? <th scope="col">Personalized</th> : null}
              {personalized ? <th scope="col">Gain (points)</th> : null}
              {baseline ? <th scope="col">Local only</th> : null}
              {baseline ? <th scope="col">Global vs local only (points)</th> : null}
            </tr>
          </thead>
          <tbody>
            {f.silos.map((s) => (
              <tr key={s.siloId}>
                <th scope="row">{s.siloName}</th>
                <td className="figure">
                  {f.noisy ? '≈ ' : ''}
                  {formatMetric(s.global)}
                </td>
                {personalized ? <td className="figure">{formatMetric(s.personalized)}</td> : null}
                {personalized ? <td className="figure">{points(s.personalizationGain)}</td> : null}
                {baseline ? <td className="figure">{formatMetric(s.localBaseline)}</td> : null}
                {baseline ? <td className="figure">{points(s.changeFromBaseline)}</td> : null}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}
