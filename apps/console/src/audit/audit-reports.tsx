import { useQuery } from '@tanstack/react-query';
import { REPORT_FILE_NAMES, type ReportFileName } from '@tessera/protocol';
import { useState } from 'react';
import { useApi } from '../auth/session-context.js';
import { shortHash } from '../lib/format.js';
import { saveFile } from '../ui/actions.js';
import { ErrorMessage, Loading, Notice } from '../ui/feedback.js';

const LABEL: Record<ReportFileName, string> = {
  'report.pdf': 'PDF (for people)',
  'report.json': 'JSON (for verifiers)',
  'report.csv': 'CSV (for spreadsheets)',
};

/** The audit chain head a report covers. */
export interface ReportHead {
  seq: number;
  hash: string;
}

/**
 * A study's compliance report for auditors. The first download names the chain head it covers; every later download
 * asks for that same head (`upTo`), so the PDF, the JSON and the CSV describe one head although each download is
 * itself logged, until the auditor moves on to the current head.
 */
export function AuditReports() {
  const api = useApi();
  const studies = useQuery({ queryKey: ['studies'], queryFn: () => api.studies() });
  const availability = useQuery({
    queryKey: ['report-availability'],
    queryFn: () => api.reportAvailability(),
    staleTime: 5 * 60_000,
  });
  const [studyId, setStudyId] = useState('');
  const [head, setHead] = useState<ReportHead | null>(null);
  const [busy, setBusy] = useState<ReportFileName | null>(null);
  const [error, setError] = useState<unknown>(null);

  async function download(file: ReportFileName) {
    setBusy(file);
    setError(null);
    try {
      const got = await api.reportFile(studyId, file, head?.seq);
      if (got.head) setHead(got.head);
      saveFile(got);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
    }
  }

  return (
    <section className="card" aria-labelledby="reports-title">
      <h2 id="reports-title">Compliance reports</h2>
      <div className="field">
        <label htmlFor="report-study">Report on study</label>
        <select
          id="report-study"
          value={studyId}
          onChange={(e) => {
            setStudyId(e.target.value);
            setHead(null);
            setError(null);
          }}
        >
          <option value="">Choose a study…</option>
          {(studies.data ?? []).map((s) => (
            <option key={s.id} value={s.id}>
              {s.name} ({s.status})
            </option>
          ))}
        </select>
      </div>
      {!studyId ? (
        <p className="hint">Reports are exported per study.</p>
      ) : availability.isPending ? (
        <Loading label="Checking whether the hub serves the report…" />
      ) : availability.isError ? (
        <ErrorMessage error={availability.error} title="The report could not be checked" />
      ) : !availability.data.available ? (
        <Notice tone="neutral">
          <p>
            <strong>The compliance report is not available from this hub.</strong>
          </p>
          <p className="report-reason">{availability.data.message}</p>
        </Notice>
      ) : (
        <>
          <p className="muted small" role="status" data-testid="report-head">
            {head === null ? (
              'The first download covers the audit chain up to its current head and names it; the next ones cover the same head.'
            ) : (
              <>
                These downloads cover the audit chain up to record #{head.seq} (head hash{' '}
                <span className="mono" title={head.hash}>
                  {shortHash(head.hash, 16)}
                </span>
                ). Records logged since, these downloads among them, are not included.{' '}
                <button type="button" className="button button-ghost button-small" onClick={() => setHead(null)}>
                  Move to the current head
                </button>
              </>
            )}
          </p>
          <div className="row report-actions">
            {REPORT_FILE_NAMES.map((file) => (
              <button
                key={file}
                type="button"
                className="button button-secondary"
                onClick={() => void download(file)}
                disabled={busy !== null}
                aria-busy={busy === file}
              >
                {busy === file ? 'Downloading…' : `Download ${LABEL[file]}`}
              </button>
            ))}
          </div>
          {error ? <ErrorMessage error={error} title="The report could not be downloaded" /> : null}
        </>
      )}
    </section>
  );
}
