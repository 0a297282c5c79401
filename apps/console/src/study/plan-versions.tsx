import { planValueText, type PlanVersionsView } from '@tessera/protocol';
import { formatTime, shortHash } from '../lib/format.js';
import { EmptyState } from '../ui/feedback.js';

/** Each plan version, newest first, with the fields it changed from the version before it. */
export function PlanVersions({ versions }: { versions: PlanVersionsView }) {
  if (versions.versions.length <= 1) {
    return <p className="hint">One plan version so far: nothing to compare.</p>;
  }
  return (
    <div className="plan-versions">
      {[...versions.versions].reverse().map((v) => (
        <section key={v.version} aria-label={`Plan version ${v.version}`} data-version={v.version}>
          <h3>
            Version {v.version}{' '}
            <span className="mono muted small" title={v.planHash}>
              {shortHash(v.planHash, 12)}
            </span>{' '}
            <span className="muted small">· {formatTime(v.createdAt)}</span>
          </h3>
          {v.version === 1 ? (
            <p className="hint">The first version.</p>
          ) : v.changes.length === 0 ? (
            <EmptyState title="No field changed">The plan is the same as version {v.version - 1}.</EmptyState>
          ) : (
            <div className="table-wrap">
              <table className="table" aria-label={`Changes in version ${v.version}`}>
                <thead>
                  <tr>
                    <th scope="col">Field</th>
                    <th scope="col">Version {v.version - 1}</th>
                    <th scope="col">Version {v.version}</th>
                  </tr>
                </thead>
                <tbody>
                  {v.changes.map((c) => (
                    <tr key={c.path} data-path={c.path}>
                      <th scope="row" className="mono small">
                        {c.path}
                      </th>
                      <td className="mono small wrap">
                        {c.kind === 'added' ? <em>absent</em> : planValueText(c.before)}
                      </td>
                      <td className="mono small wrap">
                        {c.kind === 'removed' ? <em>removed</em> : planValueText(c.after)}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </section>
      ))}
    </div>
  );
}
