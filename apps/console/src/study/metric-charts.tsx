import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { ReleasePlan, RoundView } from '@tessera/protocol';
import { formatMetric } from '../lib/format.js';
import { hasEvaluations, metricSeries, silosOfRounds, type MetricName } from '../lib/round-metrics.js';
import { Badge, EmptyState } from '../ui/feedback.js';
import { useSiloColours } from './silo-colours.js';

const TITLES: Record<MetricName, string> = { loss: 'Loss', accuracy: 'Accuracy', auc: 'AUC' };

/** Marks figures estimated from a noisy (DP) release rather than measured exactly. */
export function DpEstimate() {
  return (
    <Badge tone="info" title="Estimated from score histograms with differential-privacy noise: not an exact figure">
      DP estimate
    </Badge>
  );
}

function MetricChart({ rounds, metric }: { rounds: RoundView[]; metric: MetricName }) {
  const rows = metricSeries(rounds, metric);
  const silos = silosOfRounds(rounds);
  const colours = useSiloColours();
  const titleId = `chart-${metric}`;
  const last = rows[rows.length - 1];
  const noisy = rows.some((r) => r.noisy);
  return (
    <figure className="chart" aria-labelledby={titleId} data-metric={metric}>
      <figcaption id={titleId}>
        <strong>{TITLES[metric]}</strong>
        {noisy ? (
          <>
            {' '}
            <DpEstimate />
          </>
        ) : null}
        {last ? (
          <span className="muted">
            {' '}
            · mean {formatMetric(last.mean)} at {last.label === 'final' ? 'the final model' : `round ${last.label}`}
          </span>
        ) : null}
      </figcaption>
      {rows.length === 0 ? (
        <p className="chart-empty muted">
          {metric === 'loss' && hasEvaluations(rounds)
            ? 'No loss in the evaluations reported: DP estimates carry none.'
            : 'No evaluation reported yet.'}
        </p>
      ) : (
        <>
          <div className="chart-canvas" aria-hidden="true">
            <ResponsiveContainer width="100%" height="100%">
              <LineChart data={rows} margin={{ top: 8, right: 12, bottom: 4, left: -12 }}>
                <CartesianGrid stroke="#e3e8ef" strokeDasharray="3 3" />
                <XAxis dataKey="label" tick={{ fontSize: 12 }} />
                <YAxis
                  tick={{ fontSize: 12 }}
                  domain={metric === 'loss' ? ['auto', 'auto'] : [0, 1]}
                  tickFormatter={(v: number) => v.toFixed(2)}
                />
                <Tooltip formatter={(v) => (typeof v === 'number' ? v.toFixed(3) : String(v))} />
                <Legend wrapperStyle={{ fontSize: 12 }} />
                {/* Each silo in its own colour (the same on every page and study); a round it missed is a gap,
                    never a line drawn through it. The mean is drawn in ink, thicker. */}
                {silos.map((s) => (
                  <Line
                    key={s.id}
                    type="monotone"
                    dataKey={s.id}
                    name={s.name}
                    stroke={colours.of(s.id)}
                    strokeWidth={1.5}
                    dot={{ r: 2.5, fill: colours.of(s.id) }}
                    connectNulls={false}
                    isAnimationActive={false}
                  />
                ))}
                <Line
                  type="monotone"
                  dataKey="mean"
                  name="Mean"
                  stroke="#1b2430"
                  strokeWidth={3}
                  dot={{ r: 3 }}
                  isAnimationActive={false}
                />
              </LineChart>
            </ResponsiveContainer>
          </div>
          {/* The same figures as a table, for screen readers and for copying. */}
          <div className="visually-hidden">
            <table>
              <caption>{TITLES[metric]} per round</caption>
              <thead>
                <tr>
                  <th scope="col">Round</th>
                  <th scope="col">Mean</th>
                  {silos.map((s) => (
                    <th scope="col" key={s.id}>
                      {s.name}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {rows.map((r) => (
                  <tr key={r.label}>
                    <th scope="row">
                      {r.label}
                      {r.noisy ? ' (DP estimate)' : ''}
                    </th>
                    <td>{formatMetric(r.mean)}</td>
                    {silos.map((s) => (
                      <td key={s.id}>{r[s.id] === null ? 'missed' : formatMetric(r[s.id] as number)}</td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </figure>
  );
}

/**
 * Accuracy and AUC (and the loss, when the plan releases exact metrics) per round: each silo's evaluation of the
 * round's input model, and their mean, as far as the plan's release allows. Training loss never leaves a silo.
 */
export function MetricCharts({ rounds, release }: { rounds: RoundView[]; release: ReleasePlan }) {
  const e = release.evaluation;
  if (e.mode === 'none') {
    return (
      <EmptyState title="No evaluation is released">
        This plan keeps each hospital&apos;s evaluation in its own log: no figure leaves the silo.
      </EmptyState>
    );
  }
  return (
    <>
      {e.mode === 'noisy' ? (
        <p className="hint">
          Figures marked <DpEstimate /> are estimated from noisy score histograms ({e.scoreBins} bins per true label):
          accuracy at threshold 0.5 and AUC from the binned scores. They carry the noise that protects single records,
          and no loss.
        </p>
      ) : null}
      <div className="charts">
        {e.mode === 'exact' ? <MetricChart rounds={rounds} metric="loss" /> : null}
        <MetricChart rounds={rounds} metric="accuracy" />
        <MetricChart rounds={rounds} metric="auc" />
      </div>
    </>
  );
}
