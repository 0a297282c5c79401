import { useQuery } from '@tanstack/react-query';
import type { RoundView } from '@tessera/protocol';
import { useApi } from '../auth/session-context.js';
import { ErrorMessage, Loading } from '../ui/feedback.js';
import { DecisionHistory } from './decision-history.js';
import { PlanVersions } from './plan-versions.js';
import { RoundHistory } from './round-history.js';
import { decisionHistory, planVersions, roundHistory } from './study-pages-api.js';

/** What changes in the rounds the live feed delivers: the history is read again when any of it moves. */
function roundsSignature(rounds: readonly RoundView[]): string {
  return rounds
    .map((r) => `${r.number}.${r.attempt}.${r.status}.${r.participants.map((p) => p.status).join()}`)
    .join('|');
}

export function StudyRoundHistory({ studyId, rounds }: { studyId: string; rounds: readonly RoundView[] }) {
  const api = useApi();
  const history = useQuery({
    queryKey: ['round-history', studyId, roundsSignature(rounds)],
    queryFn: () => roundHistory(api, studyId),
    placeholderData: (previous) => previous,
  });
  if (history.isPending) return <Loading label="Loading the round history…" />;
  if (history.isError) return <ErrorMessage error={history.error} title="The round history could not be loaded" />;
  return <RoundHistory history={history.data} />;
}

export function StudyDecisions({ studyId }: { studyId: string }) {
  const api = useApi();
  const history = useQuery({
    queryKey: ['decisions', studyId],
    queryFn: () => decisionHistory(api, studyId),
    refetchInterval: 10_000,
  });
  return (
    <>
      <h3>Every decision, every version</h3>
      {history.isPending ? (
        <Loading label="Loading the decisions…" />
      ) : history.isError ? (
        <ErrorMessage error={history.error} title="The decisions could not be loaded" />
      ) : (
        <DecisionHistory history={history.data} />
      )}
    </>
  );
}

export function StudyPlanVersions({ studyId }: { studyId: string }) {
  const api = useApi();
  const versions = useQuery({ queryKey: ['plan-versions', studyId], queryFn: () => planVersions(api, studyId) });
  if (versions.isPending) return <Loading label="Loading the plan versions…" />;
  if (versions.isError) return <ErrorMessage error={versions.error} title="The plan versions could not be loaded" />;
  return <PlanVersions versions={versions.data} />;
}
