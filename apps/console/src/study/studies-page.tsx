import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { Link } from 'react-router';
import { useApi, useCanAdminister } from '../auth/session-context.js';
import { formatTime } from '../lib/format.js';
import { Badge, EmptyState, ErrorMessage, Loading } from '../ui/feedback.js';
import { usePageTitle } from '../ui/page-title.js';
import { StudyDrafts } from './study-drafts.js';
import { studiesArchived } from './study-pages-api.js';
import { StudyStatusBadge } from './study-status.js';

type ArchivedFilter = 'exclude' | 'include' | 'only';
const FILTER_LABEL: Record<ArchivedFilter, string> = {
  exclude: 'Not archived',
  only: 'Archived',
  include: 'All, archived included',
};

export function StudiesPage() {
  usePageTitle('Studies');
  const api = useApi();
  const canAdminister = useCanAdminister();
  const [archived, setArchived] = useState<ArchivedFilter>('exclude');
  const studies = useQuery({
    queryKey: ['studies', archived],
    queryFn: () => (archived === 'exclude' ? api.studies() : studiesArchived(api, archived)),
    refetchInterval: 10_000,
  });
  return (
    <section className="page" aria-labelledby="studies-title">
      <div className="page-head">
        <h1 id="studies-title">Studies</h1>
        {canAdminister ? (
          <Link to="/studies/new" className="button button-primary">
            New study
          </Link>
        ) : null}
      </div>
      {canAdminister ? <StudyDrafts /> : null}
      <div className="row filters">
        <label>
          Show{' '}
          <select value={archived} onChange={(e) => setArchived(e.target.value as ArchivedFilter)}>
            {(Object.keys(FILTER_LABEL) as ArchivedFilter[]).map((f) => (
              <option key={f} value={f}>
                {FILTER_LABEL[f]}
              </option>
            ))}
          </select>
        </label>
      </div>
      {studies.isPending ? (
        <Loading label="Loading studies…" />
      ) : studies.isError ? (
        <ErrorMessage error={studies.error} title="The studies could not be loaded" />
      ) : studies.data.length === 0 && archived === 'only' ? (
        <EmptyState title="No archived study" />
      ) : studies.data.length === 0 ? (
        <EmptyState title="No study yet">
          {canAdminister ? (
            <>
              <Link to="/studies/new">Create the first study</Link> once the hospitals are registered as silos.
            </>
          ) : (
            'Administrators create studies.'
          )}
        </EmptyState>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <caption className="visually-hidden">Studies, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Study</th>
                <th scope="col">Status</th>
                <th scope="col">Plan</th>
                <th scope="col">Approvals</th>
                <th scope="col">Privacy</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {studies.data.map((s) => {
                const approved = s.decisions.filter((d) => d.decision === 'approve').length;
                return (
                  <tr key={s.id}>
                    <th scope="row">
                      <Link to={`/studies/${s.id}`}>{s.name}</Link>
                    </th>
                    <td>
                      <StudyStatusBadge status={s.status} />
                      {s.paused ? <Badge tone="warning">paused</Badge> : null}
                      {s.archivedAt ? <Badge tone="neutral">archived</Badge> : null}
                    </td>
                    <td>
                      v{s.planVersion}{' '}
                      <span className="mono muted small" title={s.planHash}>
                        {s.planHash.slice(0, 10)}…
                      </span>
                    </td>
                    <td>
                      {approved} of {s.plan.silos.length}
                    </td>
                    <td>
                      {s.plan.privacy.mode === 'none' ? (
                        <span className="muted">no DP</span>
                      ) : (
                        `${s.plan.privacy.mode}, ε ≤ ${s.plan.privacy.targetEpsilon}`
                      )}
                    </td>
                    <td className="nowrap">{formatTime(s.createdAt)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
