import { useQuery } from '@tanstack/react-query';
import type { StudyView } from '@tessera/protocol';
import { useState } from 'react';
import { Link } from 'react-router';
import { useApi, useCanAdminister } from '../auth/session-context.js';
import { formatMetric, formatTime } from '../lib/format.js';
import { Badge, EmptyState, ErrorMessage, Loading } from '../ui/feedback.js';
import { usePageTitle } from '../ui/page-title.js';
import { ListFilters } from '../ui/list-filters.js';
import { DpEstimate } from './metric-charts.js';
import { StudyDrafts } from './study-drafts.js';
import {
  archivedQueryOf,
  filterStudies,
  progressLabel,
  resultOf,
  STUDY_STATUS_FILTERS,
  type StudyStatusFilter,
} from './study-filter.js';
import { studiesArchived } from './study-pages-api.js';
import { StudyStatusBadge } from './study-status.js';

/** The progress column: round r of R, or the state. */
export function StudyProgressCell({ study }: { study: StudyView }) {
  return <span className="nowrap">{progressLabel(study)}</span>;
}

/** The results column: the latest mean accuracy the hub holds, flagged when it is a DP estimate; "—" when none. */
export function StudyResultCell({ study }: { study: StudyView }) {
  const r = resultOf(study);
  if (!r)
    return (
      <span className="muted" aria-label="no result yet">
        —
      </span>
    );
  return (
    <>
      <span className="nowrap" title="Mean accuracy over the silos that evaluated (unweighted)">
        accuracy {formatMetric(r.accuracy)}
      </span>
      {r.noisy ? (
        <>
          {' '}
          <DpEstimate />
        </>
      ) : null}
      <div className="small muted nowrap">{r.where}</div>
    </>
  );
}

export function StudiesPage() {
  usePageTitle('Studies');
  const api = useApi();
  const canAdminister = useCanAdminister();
  const [query, setQuery] = useState('');
  const [status, setStatus] = useState<StudyStatusFilter>('current');
  const archived = archivedQueryOf(status);
  const studies = useQuery({
    queryKey: ['studies', archived],
    queryFn: () => (archived === 'exclude' ? api.studies() : studiesArchived(api, archived)),
    refetchInterval: 10_000,
  });
  const shown = studies.data ? filterStudies(studies.data, query, status) : [];
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
      <ListFilters
        noun="studies"
        query={query}
        onQuery={setQuery}
        placeholder="name, id, plan hash or hospital"
        status={status}
        onStatus={setStatus}
        statuses={STUDY_STATUS_FILTERS}
      />
      {studies.isPending ? (
        <Loading label="Loading studies…" />
      ) : studies.isError ? (
        <ErrorMessage error={studies.error} title="The studies could not be loaded" />
      ) : studies.data.length === 0 && archived === 'only' ? (
        <EmptyState title="No archived study" />
      ) : studies.data.length === 0 && archived === 'exclude' && status === 'current' && !query.trim() ? (
        <EmptyState title="No study yet">
          {canAdminister ? (
            <>
              <Link to="/studies/new">Create the first study</Link> once the hospitals are registered as silos.
            </>
          ) : (
            'Administrators create studies.'
          )}
        </EmptyState>
      ) : shown.length === 0 ? (
        <EmptyState title="No study matches">Change the search or the status.</EmptyState>
      ) : (
        <>
          <p className="hint" role="status">
            {shown.length === studies.data.length
              ? `${shown.length} stud${shown.length === 1 ? 'y' : 'ies'}`
              : `${shown.length} of ${studies.data.length} studies match`}
          </p>
          <div className="table-wrap">
            <table className="table">
              <caption className="visually-hidden">Studies, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">Study</th>
                  <th scope="col">Status</th>
                  <th scope="col">Plan</th>
                  <th scope="col">Progress</th>
                  <th scope="col">Result</th>
                  <th scope="col">Approvals</th>
                  <th scope="col">Privacy</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                {shown.map((s) => {
                  const approved = s.decisions.filter((d) => d.decision === 'approve').length;
                  return (
                    <tr key={s.id} data-study-id={s.id}>
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
                        <StudyProgressCell study={s} />
                      </td>
                      <td>
                        <StudyResultCell study={s} />
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
        </>
      )}
    </section>
  );
}
