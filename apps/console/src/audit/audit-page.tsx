import { useInfiniteQuery, useQuery } from '@tanstack/react-query';
import { auditActorKey, type AuditActorNames, type AuditEventQuery, type AuditRecord } from '@tessera/protocol';
import { useState, type FormEvent } from 'react';
import { useApi } from '../auth/session-context.js';
import { shortHash } from '../lib/format.js';
import { DownloadButton } from '../ui/actions.js';
import { EmptyState, ErrorMessage, Loading } from '../ui/feedback.js';
import { usePageTitle } from '../ui/page-title.js';
import { ChainStatus } from './audit-chain.js';
import { AuditReports } from './audit-reports.js';
import {
  AUDIT_ZONES,
  browserZoneName,
  formatAuditTime,
  toWallTimeInput,
  wallTimeToInstant,
  zoneLabel,
  type AuditZone,
} from './audit-time.js';

const PAGE = 50;
const ZONE_KEY = 'tessera.audit.zone';

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

type FilterProblems = Partial<Record<'from' | 'to', string>>;

/** The hub's query for the form, with the dates read as wall times in `zone`; or what is wrong with them. */
export function queryOf(f: FilterForm, zone: AuditZone): { query: AuditEventQuery } | { problems: FilterProblems } {
  const from = wallTimeToInstant(f.from, zone);
  const to = wallTimeToInstant(f.to, zone);
  const problems: FilterProblems = {};
  if (!from.ok) problems.from = from.message;
  if (!to.ok) problems.to = to.message;
  if (from.ok && to.ok && from.instant && to.instant && from.instant >= to.instant) {
    problems.to = 'Before must be later than From (From is included, Before is not)';
  }
  if (!from.ok || !to.ok || problems.to) return { problems };
  return {
    query: {
      q: f.q.trim() || undefined,
      action: f.action.trim() || undefined,
      actor: f.actor.trim() || undefined,
      studyId: f.studyId || undefined,
      siloId: f.siloId || undefined,
      from: from.instant,
      to: to.instant,
    },
  };
}

function storedZone(): AuditZone {
  try {
    return window.localStorage.getItem(ZONE_KEY) === 'local' ? 'local' : 'utc';
  } catch {
    return 'utc'; // storage refused (private mode): UTC, as the hub records
  }
}

/** The form's date fields moved to another zone so they still name the same instants. */
function rezoned(form: FilterForm, from: AuditZone, to: AuditZone): FilterForm {
  const move = (value: string) => {
    const parsed = wallTimeToInstant(value, from);
    return parsed.ok && parsed.instant ? toWallTimeInput(parsed.instant, to) : value;
  };
  return { ...form, from: move(form.from), to: move(form.to) };
}

export function AuditPage() {
  usePageTitle('Audit');
  const api = useApi();
  const [zone, setZone] = useState<AuditZone>(storedZone);
  const [form, setForm] = useState<FilterForm>(EMPTY);
  const [problems, setProblems] = useState<FilterProblems>({});
  const [applied, setApplied] = useState<AuditEventQuery>({});
  const studies = useQuery({ queryKey: ['studies'], queryFn: () => api.studies() });
  const silos = useQuery({ queryKey: ['silos'], queryFn: () => api.silos() });

  const events = useInfiniteQuery({
    queryKey: ['audit-events', applied],
    queryFn: ({ pageParam }) =>
      api.auditEvents({ ...applied, limit: PAGE, order: 'desc', ...(pageParam === null ? {} : { cursor: pageParam }) }),
    initialPageParam: null as number | null,
    getNextPageParam: (last) => last.nextCursor,
  });

  function apply(e: FormEvent) {
    e.preventDefault();
    const result = queryOf(form, zone);
    if ('problems' in result) {
      setProblems(result.problems);
      return;
    }
    setProblems({});
    setApplied(result.query);
  }
  function chooseZone(next: AuditZone) {
    setForm((f) => rezoned(f, zone, next));
    setZone(next);
    try {
      window.localStorage.setItem(ZONE_KEY, next);
    } catch {
      // Not remembered; the choice still holds on this page.
    }
  }
  const set = (k: keyof FilterForm) => (e: { target: { value: string } }) =>
    setForm((f) => ({ ...f, [k]: e.target.value }));
  const pages = events.data?.pages ?? [];
  const records = pages.flatMap((p) => p.events);
  const names: AuditActorNames = Object.assign({}, ...pages.map((p) => p.actorNames ?? {})) as AuditActorNames;
  const zoneName = zoneLabel(zone);

  return (
    <section className="page audit-page" aria-labelledby="audit-title">
      <div className="page-head">
        <h1 id="audit-title">Audit trail</h1>
      </div>
      <p className="lead">
        Every security- and study-relevant action, hash-chained and periodically signed by the hub. Nothing here changes
        a record.
      </p>
      <fieldset className="group zone-picker">
        <legend>Times shown and filtered in</legend>
        {AUDIT_ZONES.map((z) => (
          <label key={z} className="field-check">
            <input type="radio" name="audit-zone" value={z} checked={zone === z} onChange={() => chooseZone(z)} />{' '}
            {z === 'utc' ? 'UTC' : `${browserZoneName()} (this browser)`}
          </label>
        ))}
      </fieldset>
      <ChainStatus zone={zone} />
      <AuditReports />

      <section className="card" aria-labelledby="events-title">
        <h2 id="events-title">Events</h2>
        <form className="filters" onSubmit={apply} role="search" aria-label="Filter audit events" noValidate>
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
            <input id="f-actor" value={form.actor} onChange={set('actor')} placeholder="username, silo name or id" />
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
          <DateField
            id="f-from"
            label="From (inclusive)"
            value={form.from}
            onChange={set('from')}
            error={problems.from}
          />
          <DateField id="f-to" label="Before (exclusive)" value={form.to} onChange={set('to')} error={problems.to} />
          <p className="hint filters-note" id="f-dates-note">
            Dates are in {zoneName}, to the second: From keeps events at that instant, Before leaves them out.
          </p>
          <div className="filters-actions">
            <button type="submit" className="button button-primary">
              Apply filters
            </button>
            <button
              type="button"
              className="button button-ghost"
              onClick={() => {
                setForm(EMPTY);
                setProblems({});
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
                <caption className="visually-hidden">Audit events, newest first, times in {zoneName}</caption>
                <thead>
                  <tr>
                    <th scope="col">#</th>
                    <th scope="col">Time ({zone === 'utc' ? 'UTC' : browserZoneName()})</th>
                    <th scope="col">Actor</th>
                    <th scope="col">Action</th>
                    <th scope="col">Subject</th>
                    <th scope="col">Details</th>
                  </tr>
                </thead>
                <tbody>
                  {records.map((r) => (
                    <EventRow key={r.seq} r={r} zone={zone} actorName={names[auditActorKey(r.actor)]} />
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

function DateField(props: {
  id: string;
  label: string;
  value: string;
  onChange: (e: { target: { value: string } }) => void;
  error: string | undefined;
}) {
  return (
    <div className={props.error ? 'field field-invalid' : 'field'}>
      <label htmlFor={props.id}>{props.label}</label>
      <input
        id={props.id}
        type="datetime-local"
        step={1}
        value={props.value}
        onChange={props.onChange}
        aria-describedby={`${props.id}-error f-dates-note`}
        aria-invalid={props.error ? true : undefined}
      />
      <div className="field-error" id={`${props.id}-error`} role="alert">
        {props.error ? <p>{props.error}</p> : null}
      </div>
    </div>
  );
}

function EventRow({ r, zone, actorName }: { r: AuditRecord; zone: AuditZone; actorName: string | undefined }) {
  const subject = Object.entries(r.subject ?? {}).filter(([, v]) => v !== undefined);
  const details = JSON.stringify(r.details);
  return (
    <tr>
      <td className="mono small" title={`hash ${r.hash}`}>
        {r.seq}
      </td>
      <td className="nowrap" data-testid="event-time">
        {formatAuditTime(r.time, zone)}
      </td>
      <td title={`${r.actor.type} ${r.actor.id}`}>
        {actorName ?? r.actor.name ?? r.actor.id} <span className="muted small">{r.actor.type}</span>
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
