import { useQuery } from '@tanstack/react-query';
import { REPORT_FILE_NAMES } from '@tessera/protocol';
import { useApi } from '../auth/session-context.js';
import { DownloadButton } from '../ui/actions.js';
import { ErrorMessage, Loading, Notice } from '../ui/feedback.js';

const LABEL: Record<(typeof REPORT_FILE_NAMES)[number], string> = {
  'report.pdf': 'PDF (for people)',
  'report.json': 'JSON (for verifiers)',
  'report.csv': 'CSV (for spreadsheets)',
};

/**
 * The study's compliance report: approvals, participants, rounds, model hashes and privacy spent. The buttons show
 * only when the hub serves reports (checked in its API description); a refused download shows the hub's message.
 */
export function ReportPanel({ studyId }: { studyId: string }) {
  const api = useApi();
  const availability = useQuery({
    queryKey: ['report-availability'],
    queryFn: () => api.reportAvailability(),
    staleTime: 5 * 60_000,
  });
  if (availability.isPending) return <Loading label="Checking whether the hub serves the report…" />;
  if (availability.isError) return <ErrorMessage error={availability.error} title="The report could not be checked" />;
  if (!availability.data.available) {
    return (
      <Notice tone="neutral">
        <p>
          <strong>The compliance report is not available from this hub.</strong>
        </p>
        <p className="report-reason">{availability.data.message}</p>
      </Notice>
    );
  }
  return (
    <div className="row report-actions">
      {REPORT_FILE_NAMES.map((file) => (
        <DownloadButton key={file} fetchFile={() => api.reportFile(studyId, file)}>
          Download {LABEL[file]}
        </DownloadButton>
      ))}
    </div>
  );
}
