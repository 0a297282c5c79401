import { useInfiniteQuery, useQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import type { AuditEventQuery, AuditRecord } from '@tessera/protocol';
import { useApi } from '../auth/session-context.js';
import { formatTime, shortHash } from '../lib/format.js';
import { DownloadButton } from '../ui/actions.js';
import { Badge, EmptyState, ErrorMessage, Loading } from '../ui/feedback.js';
import { usePageTitle } from '../ui/page-title.js';
import { ReportPanel } from '../study/report-panel.js';

const PAGE = 50;

interface FilterForm {
  q: string;
  action: string;
  actor: string;
  studyId: string;
  siloId: string;
  from: string;
  to: string;
}

const EMPTY: FilterForm = { q: '', action: '', actor: '', studyId: '', siloId: '', from: '', to: '' };

/** datetime-local gives local wall time without a zone; the hub wants an instant with one. */
function toInstant(local: string): string | undefined {
  if (!local) return undefined;
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

function queryOf(f: FilterForm): AuditEventQuery {
  return {
    q: f.q.trim() || undefined,
    action: f.action.trim() || undefined,
    actor: f.actor.trim() || undefined,
    studyId: f.studyId || undefined,
    siloId: f.siloId || undefined,
    from: toInstant(f.from),
    to: toInstant(f.to),
  };
}

export function AuditPage() {
  usePageTitle('Audit');
  const api = useApi();
  const [form, setForm] = useState<FilterForm>(EMPTY);
  const [applied, setApplied] = useState<AuditEventQuery>({});
  const studies = useQuery({ queryKey: ['studies'], queryFn: () => api.studies() });
  const silos = useQuery({ queryKey: ['silos'], queryFn: () => api.silos() });
  const [reportStudy, setReportStudy] = useState('');

  const events = useInfiniteQuery({
    queryKey: ['audit-events', applied],
    queryFn: ({ pageParam }) =>
      api.auditEvents({ ...applied, limit: PAGE, order: 'desc', ...(pageParam === null ? {} : { cursor: pageParam }) }),
    initialPageParam: null as number | null,
    getNextPageParam: (last) => last.nextCursor,
  });

  function apply(e: FormEvent) {
    e.preventDefault();
    setApplied(queryOf(form));
  }
  const set = (k: keyof FilterForm) => (e: { target: { value: string } }) =>
    setForm((f) => ({ ...f, [k]: e.target.value }));
  const records = events.data?.pages.flatMap((p) => p.events) ?? [];

  return (
    <section className="page" aria-labelledby="audit-title">
      <div className="page-head">
        <h1 id="audit-title">Audit trail</h1>
      </div>
      <p className="lead">
        Every security- and study-relevant action, hash-chained and periodically signed by the hub. Nothing here changes
        a record.
      </p>
      <ChainStatus />

      <section className="card" aria-labelledby="reports-title">
        <h2 id="reports-title">Compliance reports</h2>
        <div className="field">
          <label htmlFor="report-study">Study</label>
          <select id="report-study" value={reportStudy} onChange={(e) => setReportStudy(e.target.value)}>
            <option value="">Choose a study…</option>
            {(studies.data ?? []).map((s) => (
              <option key={s.id} value={s.id}>
                {s.name} ({s.status})
              </option>
            ))}
          </select>
        </div>
        {reportStudy ? <ReportPanel studyId={reportStudy} /> : <p className="hint">Reports are exported per study.</p>}
      </section>

      <section className="card" aria-labelledby="events-title">
        <h2 id="events-title">Events</h2>
        <form className="filters" onSubmit={apply} role="search" aria-label="Filter audit events">
          <div className="field">
            <label htmlFor="f-q">Search</label>
            <input
              id="f-q"
              type="search"
              value={form.q}
              onChange={set('q')}
              placeholder="text in the action or details"
            />
          </div>
          <div className="field">
            <label htmlFor="f-action">Action starts with</label>
            <input id="f-action" value={form.action} onChange={set('action')} placeholder="silo." />
          </div>
          <div className="field">
            <label htmlFor="f-actor">Actor</label>
            <input id="f-actor" value={form.actor} onChange={set('actor')} placeholder="username or id" />
          </div>
          <div className="field">
            <label htmlFor="f-study">Study</label>
            <select id="f-study" value={form.studyId} onChange={set('studyId')}>
              <option value="">Any</option>
              {(studies.data ?? []).map((s) => (
                <option key={s.id} value={s.id}>
                  {s.name}
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor="f-silo">Silo</label>
            <select id="f-silo" value={form.siloId} onChange={set('siloId')}>
              <option value="">Any</option>
              {(silos.data ?? []).map((s) => (
                <option key={s.id} value={s.id}>
                  {s.name}
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor="f-from">From</label>
            <input id="f-from" type="datetime-local" value={form.from} onChange={set('from')} />
          </div>
          <div className="field">
            <label htmlFor="f-to">Before</label>
            <input id="f-to" type="datetime-local" value={form.to} onChange={set('to')} />
          </div>
          <div className="filters-actions">
            <button type="submit" className="button button-primary">
              Apply filters
            </button>
            <button
              type="button"
              className="button button-ghost"
              onClick={() => {
                setForm(EMPTY);
                setApplied({});
              }}
            >
              Clear
            </button>
            <DownloadButton fetchFile={() => api.auditEventsCsv(applied)}>Export CSV</DownloadButton>
          </div>
        </form>
        {events.isPending ? (
          <Loading label="Loading events…" />
        ) : events.isError ? (
          <ErrorMessage error={events.error} title="The events could not be loaded" />
        ) : records.length === 0 ? (
          <EmptyState title="No event matches these filters" />
        ) : (
          <>
            <div className="table-wrap">
              <table className="table audit-table">
                <caption className="visually-hidden">Audit events, newest first</caption>
                <thead>
                  <tr>
                    <th scope="col">#</th>
                    <th scope="col">Time</th>
                    <th scope="col">Actor</th>
                    <th scope="col">Action</th>
                    <th scope="col">Subject</th>
                    <th scope="col">Details</th>
                  </tr>
                </thead>
                <tbody>
                  {records.map((r) => (
                    <EventRow key={r.seq} r={r} />
                  ))}
                </tbody>
              </table>
            </div>
            <div className="row row-between">
              <span className="muted">{records.length} events shown</span>
              {events.hasNextPage ? (
                <button
                  type="button"
                  className="button button-secondary"
                  onClick={() => void events.fetchNextPage()}
                  disabled={events.isFetchingNextPage}
                >
                  {events.isFetchingNextPage ? 'Loading…' : 'Load older events'}
                </button>
              ) : null}
            </div>
          </>
        )}
      </section>
    </section>
  );
}

function EventRow({ r }: { r: AuditRecord }) {
  const subject = Object.entries(r.subject ?? {}).filter(([, v]) => v !== undefined);
  const details = JSON.stringify(r.details);
  return (
    <tr>
      <td className="mono small" title={`hash ${r.hash}`}>
        {r.seq}
      </td>
      <td className="nowrap">{formatTime(r.time)}</td>
      <td>
        {r.actor.name ?? shortHash(r.actor.id, 8)} <span className="muted small">{r.actor.type}</span>
      </td>
      <td className="mono">{r.action}</td>
      <td className="small">
        {subject.map(([k, v]) => (
          <div key={k}>
            {k}:{' '}
            <span className="mono" title={v}>
              {shortHash(v, 8)}
            </span>
          </div>
        ))}
      </td>
      <td className="small details">
        {details === '{}' ? (
          <span className="muted">—</span>
        ) : (
          <details>
            <summary>{details.length > 60 ? `${details.slice(0, 60)}…` : details}</summary>
            <pre className="code">{JSON.stringify(r.details, null, 2)}</pre>
          </details>
        )}
      </td>
    </tr>
  );
}

function ChainStatus() {
  const api = useApi();
  const verify = useQuery({ queryKey: ['audit-verify'], queryFn: () => api.verifyAudit(), staleTime: 30_000 });
  const key = useQuery({ queryKey: ['audit-key'], queryFn: () => api.auditPublicKey(), staleTime: Infinity });
  return (
    <section className="card chain" aria-labelledby="chain-title">
      <div className="row row-between">
        <h2 id="chain-title">Chain verification</h2>
        <button
          type="button"
          className="button button-secondary"
          onClick={() => void verify.refetch()}
          disabled={verify.isFetching}
        >
          {verify.isFetching ? 'Verifying…' : 'Verify again'}
        </button>
      </div>
      {verify.isPending ? (
        <Loading label="Verifying the whole chain…" />
      ) : verify.isError ? (
        <ErrorMessage error={verify.error} title="The chain could not be verified" />
      ) : (
        <div className="chain-result" role="status">
          {verify.data.ok ? <Badge tone="success">✓ intact</Badge> : <Badge tone="danger">✗ broken</Badge>}{' '}
          {verify.data.records} records up to #{verify.data.headSeq}; {verify.data.checkpoints.verified} of{' '}
          {verify.data.checkpoints.total} signed checkpoints verified · {formatTime(verify.data.verifiedAt)}
          {verify.data.firstBroken ? (
            <p className="danger-text">
              First break at #{verify.data.firstBroken.seq}: {verify.data.firstBroken.message}
            </p>
          ) : null}
          {verify.data.headHash ? (
            <p className="muted small">
              Head hash <span className="mono">{verify.data.headHash}</span>
            </p>
          ) : null}
        </div>
      )}
      {key.data ? (
        <p className="muted small">
          Hub audit key id <span className="mono wrap">{key.data.keyId}</span> (pin it when verifying reports offline
          with <span className="mono">tessera-verify --public-key</span>).
        </p>
      ) : null}
    </section>
  );
}
