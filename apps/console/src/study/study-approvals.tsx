import { Link } from 'react-router';
import type { StudyView } from '@tessera/protocol';
import { formatTime } from '../lib/format.js';
import { Badge, EmptyState } from '../ui/feedback.js';

/** Each invited silo's decision on the current plan hash (older decisions show as pending). */
export function StudyApprovals({ study }: { study: StudyView }) {
  if (study.decisions.length === 0) return <EmptyState title="No silo invited" />;
  return (
    <>
      {study.status === 'draft' ? <p className="hint">The invited silos see the plan once it is submitted.</p> : null}
      <div className="table-wrap">
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Silo</th>
              <th scope="col">Decision on the current hash</th>
              <th scope="col">Decided</th>
              <th scope="col">Reason</th>
            </tr>
          </thead>
          <tbody>
            {study.decisions.map((d) => {
              const current = d.planHash === study.planHash;
              return (
                <tr key={d.siloId}>
                  <th scope="row">
                    <Link to={`/silos/${d.siloId}`}>{d.siloName}</Link>
                  </th>
                  <td>
                    {d.decision === 'approve' && current ? (
                      <Badge tone="success">approved</Badge>
                    ) : d.decision === 'reject' && current ? (
                      <Badge tone="danger">rejected</Badge>
                    ) : (
                      <Badge tone="neutral">pending</Badge>
                    )}
                  </td>
                  <td className="nowrap">{d.decidedAt ? formatTime(d.decidedAt) : '—'}</td>
                  <td className="wrap">{d.reason ?? ''}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </>
  );
}
