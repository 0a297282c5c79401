import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { RoundView } from '@tessera/protocol';
import { formatMetric } from '../lib/format.js';
import { metricSeries, silosOfRounds, type MetricName } from '../lib/round-metrics.js';

/** Colour-blind-safe palette (Okabe & Ito 2008) for silos; the mean is drawn in ink, thicker. */
const SILO_COLOURS = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#999999'];

const TITLES: Record<MetricName, string> = { loss: 'Loss', accuracy: 'Accuracy', auc: 'AUC' };

function MetricChart({ rounds, metric }: { rounds: RoundView[]; metric: MetricName }) {
  const rows = metricSeries(rounds, metric);
  const silos = silosOfRounds(rounds);
  const titleId = `chart-${metric}`;
  const last = rows[rows.length - 1];
  return (
    <figure className="chart" aria-labelledby={titleId}>
      <figcaption id={titleId}>
        <strong>{TITLES[metric]}</strong>
        {last ? (
          <span className="muted">
            {' '}
            · mean {formatMetric(last.mean)} at {last.label === 'final' ? 'the final model' : `round ${last.label}`}
          </span>
        ) : null}
      </figcaption>
      {rows.length === 0 ? (
        <p className="chart-empty muted">No evaluation reported yet.</p>
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
                {silos.map((s, i) => (
                  <Line
                    key={s.id}
                    type="monotone"
                    dataKey={s.id}
                    name={s.name}
                    stroke={SILO_COLOURS[i % SILO_COLOURS.length]}
                    strokeWidth={1.5}
                    dot={{ r: 2 }}
                    connectNulls
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
                    <th scope="row">{r.label}</th>
                    <td>{formatMetric(r.mean)}</td>
                    {silos.map((s) => (
                      <td key={s.id}>{formatMetric(r[s.id] as number | null)}</td>
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

/** Loss, accuracy and AUC per round: each silo's evaluation of the round's input model, and their mean. */
export function MetricCharts({ rounds }: { rounds: RoundView[] }) {
  return (
    <div className="charts">
      <MetricChart rounds={rounds} metric="loss" />
      <MetricChart rounds={rounds} metric="accuracy" />
      <MetricChart rounds={rounds} metric="auc" />
    </div>
  );
}
