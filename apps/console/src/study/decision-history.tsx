import type { DecisionHistoryView } from '@tessera/protocol';
import { formatTime, shortHash } from '../lib/format.js';
import { Badge, EmptyState } from '../ui/feedback.js';

/**
 * Every steward decision on every plan version, per silo, oldest first: a rejection and its reason stay listed after
 * the silo later approves a new version.
 */
export function DecisionHistory({ history }: { history: DecisionHistoryView }) {
  if (history.decisions.length === 0) {
    return <EmptyState title="No decision yet">Stewards decide once the plan is submitted to them.</EmptyState>;
  }
  const bySilo = new Map<string, DecisionHistoryView['decisions']>();
  for (const d of history.decisions) bySilo.set(d.siloId, [...(bySilo.get(d.siloId) ?? []), d]);
  return (
    <div className="table-wrap">
      <table className="table" aria-label="Decision history">
        <thead>
          <tr>
            <th scope="col">Silo</th>
            <th scope="col">Plan version</th>
            <th scope="col">Decision</th>
            <th scope="col">Reason</th>
            <th scope="col">Decided</th>
          </tr>
        </thead>
        <tbody>
          {[...bySilo.values()].flatMap((rows) =>
            rows.map((d, i) => (
              <tr key={`${d.siloId}-${d.decidedAt}-${i}`} data-silo={d.siloName}>
                {i === 0 ? (
                  // The silo's name as text: the approvals table above links each silo once.
                  <th scope="row" rowSpan={rows.length}>
                    {d.siloName}
                  </th>
                ) : null}
                <td className="nowrap">
                  v{d.planVersion}{' '}
                  <span className="mono muted small" title={d.planHash}>
                    {shortHash(d.planHash, 10)}
                  </span>
                  {d.current ? null : <span className="muted small"> (earlier version)</span>}
                </td>
                <td>
                  {d.decision === 'approve' ? (
                    <Badge tone="success">approved</Badge>
                  ) : (
                    <Badge tone="danger">rejected</Badge>
                  )}
                </td>
                <td className="wrap">{d.reason ?? <span className="muted">no reason given</span>}</td>
                <td className="nowrap">{formatTime(d.decidedAt)}</td>
              </tr>
            )),
          )}
        </tbody>
      </table>
    </div>
  );
}
