import { useEffect, useState } from 'react';
import type { RoundView, StudyView } from '@tessera/protocol';
import { formatMetric, formatRelative, formatTime } from '../lib/format.js';
import { currentRound, roundInProgress } from '../lib/round-metrics.js';
import { Badge, EmptyState } from '../ui/feedback.js';
import { DpEstimate } from './metric-charts.js';
import { ParticipantStatusBadge } from './study-status.js';

// The study's current round: its deadline counting down, the study's progress, and each silo's state in it.

/** Re-renders every second so deadlines count down. */
function useNow(enabled: boolean): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!enabled) return;
    const t = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(t);
  }, [enabled]);
  return now;
}

export function CurrentRound({ study, rounds }: { study: StudyView; rounds: RoundView[] }) {
  const round = currentRound(rounds);
  const now = useNow(round?.status === 'open');
  if (!round) {
    return (
      <EmptyState title="No round yet">
        {study.status === 'running' ? 'The first round opens in a moment.' : 'Rounds begin when the study starts.'}
      </EmptyState>
    );
  }
  const total = study.plan.training.rounds;
  const trainRounds = rounds.filter((x) => x.kind === 'train' && x.status === 'closed').length;
  const done = round.kind === 'evaluate' && round.status === 'closed';
  const progress = Math.min(1, (trainRounds + (done ? 1 : 0)) / (total + 1));
  return (
    <>
      <div className="round-head">
        <p className="round-title" data-round={round.number}>
          {round.kind === 'evaluate' ? (
            <strong>Final evaluation</strong>
          ) : (
            <strong>
              Round {round.number} of {total}
            </strong>
          )}
          {round.attempt > 1 ? <span className="muted"> (attempt {round.attempt})</span> : null} ·{' '}
          <Badge tone={roundInProgress(round) ? 'info' : round.status === 'closed' ? 'success' : 'warning'}>
            {round.status}
          </Badge>
        </p>
        <p className="muted">
          {round.status === 'open'
            ? `deadline ${formatRelative(round.deadlineAt, now)}`
            : round.status === 'closing'
              ? 'aggregating the updates'
              : round.closedAt
                ? `closed ${formatTime(round.closedAt)}${round.closeReason ? ` (${round.closeReason})` : ''}`
                : ''}
        </p>
      </div>
      <div
        className="progress"
        role="progressbar"
        aria-label="Study progress"
        aria-valuemin={0}
        aria-valuemax={total}
        aria-valuenow={trainRounds}
        aria-valuetext={`${trainRounds} of ${total} training rounds closed`}
      >
        <span style={{ width: `${(progress * 100).toFixed(1)}%` }} />
      </div>
      <div className="table-wrap">
        <table className="table" aria-label={`Silos in round ${round.number}`}>
          <thead>
            <tr>
              <th scope="col">Silo</th>
              <th scope="col">Status</th>
              <th scope="col">Training records</th>
              <th scope="col">Accuracy (input model)</th>
              <th scope="col">AUC</th>
            </tr>
          </thead>
          <tbody>
            {round.participants.map((p) => (
              <tr key={p.siloId} data-silo={p.siloName}>
                <th scope="row">{p.siloName}</th>
                <td>
                  <ParticipantStatusBadge status={p.status} />
                  {p.failure ? (
                    <div className="small danger-text">
                      {p.failure.code}: {p.failure.message}
                    </div>
                  ) : null}
                </td>
                <td>{p.numExamples ?? (study.plan.release.trainingExamples === 'none' ? 'not released' : '—')}</td>
                <td>
                  <EvaluationFigure value={p.evaluation?.accuracy} noisy={p.evaluation?.noisy === true} />
                </td>
                <td>
                  <EvaluationFigure value={p.evaluation?.auc} noisy={p.evaluation?.noisy === true} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

/** One evaluation figure, marked when it is a DP estimate rather than an exact metric. */
function EvaluationFigure({ value, noisy }: { value: number | null | undefined; noisy: boolean }) {
  const shown = formatMetric(value);
  return (
    <>
      {shown}
      {noisy && shown !== '—' ? (
        <>
          {' '}
          <DpEstimate />
        </>
      ) : null}
    </>
  );
}
