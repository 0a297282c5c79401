import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { Link, useParams } from 'react-router';
import { describePlan, type ReleasePlan, type RoundView, type StudyView } from '@tessera/protocol';
import { useApi, useCanAdminister } from '../auth/session-context.js';
import { formatMetric, formatRelative, formatTime, shortHash } from '../lib/format.js';
import { studyEvaluationNoise } from '../lib/privacy-accounting.js';
import { currentRound, modelVersions, roundInProgress } from '../lib/round-metrics.js';
import { ConfirmDialog, CopyButton, DownloadButton } from '../ui/actions.js';
import { Badge, EmptyState, ErrorMessage, Loading, Notice } from '../ui/feedback.js';
import { usePageTitle } from '../ui/page-title.js';
import { DpEstimate, MetricCharts } from './metric-charts.js';
import { PrivacyBudget } from './privacy-budget.js';
import { ReleaseConsent } from './release-consent.js';
import { ReportPanel } from './report-panel.js';
import { ParticipantStatusBadge, StudyStatusBadge } from './study-status.js';
import { UpdateScreening } from './update-screening.js';
import { useStudyLive, type LiveState } from './use-study-live.js';
import { SiloColoursProvider } from './silo-colours.js';
import { StudyDecisions, StudyPlanVersions, StudyRoundHistory } from './study-history-sections.js';
import { StudyLifecycleActions } from './study-lifecycle-actions.js';
import { StudyFairness } from './study-fairness.js';

const TERMINAL = ['completed', 'stopped', 'failed'];

/** A study's page, its silos in the colours they have on every page (SiloColoursProvider). */
export function StudyPage() {
  return (
    <SiloColoursProvider>
      <StudyPageContent />
    </SiloColoursProvider>
  );
}

function StudyPageContent() {
  const { id = '' } = useParams();
  const api = useApi();
  const study = useQuery({ queryKey: ['study', id], queryFn: () => api.study(id) });
  const rounds = useQuery({ queryKey: ['rounds', id], queryFn: () => api.rounds(id) });
  usePageTitle(study.data?.name ?? 'Study');
  const ended = !!study.data && TERMINAL.includes(study.data.status) && !(rounds.data ?? []).some(roundInProgress);
  const live = useStudyLive(id, !!study.data && !ended);

  if (study.isPending) return <Loading label="Loading the study…" />;
  if (study.isError)
    return (
      <section className="page">
        <p className="crumbs">
          <Link to="/studies">← Studies</Link>
        </p>
        <ErrorMessage error={study.error} title="The study could not be loaded" />
      </section>
    );
  const s = study.data;
  const r = rounds.data ?? [];
  // A plan stored before the current format has no release section; those versions released exact metrics every
  // round (and the record counts), which is what their rounds hold.
  const release: ReleasePlan = s.legacyPlan
    ? { evaluation: { mode: 'exact', rounds: 'every' }, trainingExamples: 'exact' }
    : s.plan.release;
  const screens = !s.legacyPlan && s.plan.screening !== undefined;
  return (
    <section className="page" aria-labelledby="study-title">
      <p className="crumbs">
        <Link to="/studies">← Studies</Link>
      </p>
      <div className="page-head">
        <div>
          <h1 id="study-title">
            {s.name} <StudyStatusBadge status={s.status} />
          </h1>
          <p className="muted">
            Plan version {s.planVersion} · hash{' '}
            <span className="mono" title={s.planHash}>
              {shortHash(s.planHash, 16)}
            </span>{' '}
            · created {formatTime(s.createdAt)}
          </p>
        </div>
        <div className="row">
          <StudyActions study={s} />
          <StudyLifecycleActions study={s} />
        </div>
      </div>
      <LiveIndicator state={ended ? 'finished' : live.state} at={live.lastMessageAt} />
      <LifecycleNotices study={s} />
      {s.endReason ? (
        <Notice tone={s.status === 'failed' ? 'danger' : s.status === 'completed' ? 'success' : 'warning'}>
          {s.status === 'failed' ? 'Failed' : s.status === 'completed' ? 'Completed' : 'Stopped'}: {s.endReason}
        </Notice>
      ) : null}
      <nav className="subnav" aria-label="Study sections">
        <a href="#approvals">Approvals</a>
        <a href="#releases">Releases</a>
        <a href="#round">Current round</a>
        <a href="#history">Round history</a>
        {screens ? <a href="#screening">Screening</a> : null}
        <a href="#metrics">Metrics</a>
        <a href="#privacy">Privacy budget</a>
        <a href="#models">Models</a>
        <a href="#report">Compliance report</a>
        <a href="#plan">Plan</a>
      </nav>

      <section id="approvals" className="card" aria-labelledby="approvals-title">
        <h2 id="approvals-title">Approvals of plan version {s.planVersion}</h2>
        <Approvals study={s} />
        <StudyDecisions studyId={s.id} />
      </section>

      <section id="releases" className="card" aria-labelledby="releases-title">
        <h2 id="releases-title">What each hospital releases</h2>
        {s.legacyPlan ? (
          <p className="hint" role="note">
            {s.legacyPlan.note}
          </p>
        ) : (
          <ReleaseConsent plan={s.plan} evaluationNoise={studyEvaluationNoise(s.plan, s.privacyCost)} />
        )}
      </section>

      <section id="round" className="card" aria-labelledby="round-title">
        <h2 id="round-title">Current round</h2>
        {rounds.isError ? <ErrorMessage error={rounds.error} /> : <CurrentRound study={s} rounds={r} />}
      </section>

      <section id="history" className="card" aria-labelledby="history-title">
        <h2 id="history-title">Round history</h2>
        <StudyRoundHistory studyId={s.id} rounds={r} />
      </section>

      {screens ? (
        <section id="screening" className="card" aria-labelledby="screening-title">
          <h2 id="screening-title">Update screening</h2>
          <UpdateScreening plan={s.plan} rounds={r} siloNames={siloNamesOf(s, r)} />
        </section>
      ) : null}

      <section id="metrics" className="card" aria-labelledby="metrics-title">
        <h2 id="metrics-title">Evaluation per round</h2>
        <p className="hint">
          {release.evaluation.mode !== 'none' && release.evaluation.rounds === 'final'
            ? 'Each silo evaluates the final model on its own held-out records (this plan releases no evaluation of the intermediate models).'
            : 'Each silo evaluates the model a round starts from on its own held-out records; “final” is the last model.'}{' '}
          The thick line is the unweighted mean across silos.
        </p>
        <MetricCharts rounds={r} release={release} />
      </section>

      <StudyFairness plan={s.plan} rounds={r} />

      <section id="privacy" className="card" aria-labelledby="privacy-title">
        <h2 id="privacy-title">Privacy budget</h2>
        <PrivacyBudget study={s} rounds={r} />
      </section>

      <section id="models" className="card" aria-labelledby="models-title">
        <h2 id="models-title">Models</h2>
        <Models study={s} rounds={r} />
      </section>

      <section id="report" className="card" aria-labelledby="report-title">
        <h2 id="report-title">Compliance report</h2>
        <ReportPanel studyId={s.id} />
      </section>

      <section id="plan" className="card" aria-labelledby="plan-title">
        <h2 id="plan-title">Plan</h2>
        <pre className="code plan-text" tabIndex={0}>
          {s.legacyPlan ? JSON.stringify(s.plan, null, 2) : describePlan(s.plan).join('\n')}
        </pre>
        <h3>Plan versions</h3>
        <StudyPlanVersions studyId={s.id} />
      </section>
    </section>
  );
}

/** Says when the study is paused (and why) or archived, and where it was cloned from. */
function LifecycleNotices({ study }: { study: StudyView }) {
  return (
    <>
      {study.paused ? (
        <Notice tone="warning">
          Paused since {formatTime(study.paused.since)}: {study.paused.reason}. No new round opens until it is resumed;
          the silos&apos; agents wait.
        </Notice>
      ) : null}
      {study.archivedAt ? (
        <Notice tone="info">
          Archived {formatTime(study.archivedAt)}: read-only, and left out of the default list.
        </Notice>
      ) : null}
      {study.clonedFrom ? (
        <p className="muted small">
          Cloned from <Link to={`/studies/${study.clonedFrom}`}>another study</Link> (its plan only).
        </p>
      ) : null}
    </>
  );
}

function LiveIndicator({ state, at }: { state: LiveState; at: string | null }) {
  const text: Record<LiveState, string> = {
    connecting: 'Connecting to live updates…',
    live: 'Live',
    reconnecting: 'Reconnecting…',
    finished: 'Study ended: no more updates',
    unavailable: 'Live updates unavailable',
  };
  return (
    <p className={`live live-${state}`} role="status" aria-live="polite">
      <span className="dot" aria-hidden="true" />
      {text[state]}
      {state === 'live' && at ? <span className="muted">&nbsp;· updated {formatTime(at).slice(11)}</span> : null}
    </p>
  );
}

type StudyCommand = 'submit' | 'start' | 'stop';

function StudyActions({ study }: { study: StudyView }) {
  const api = useApi();
  const canAdminister = useCanAdminister();
  const queryClient = useQueryClient();
  const [confirm, setConfirm] = useState<StudyCommand | null>(null);
  const command = useMutation({
    mutationFn: ({ c, reason }: { c: StudyCommand; reason: string }) =>
      c === 'submit'
        ? api.submitStudy(study.id)
        : c === 'start'
          ? api.startStudy(study.id)
          : api.stopStudy(study.id, reason),
    onSuccess: (updated) => {
      setConfirm(null);
      queryClient.setQueryData(['study', study.id], updated);
      void queryClient.invalidateQueries({ queryKey: ['rounds', study.id] });
      void queryClient.invalidateQueries({ queryKey: ['studies'] });
    },
  });
  // An archived study is read-only: only its lifecycle actions (unarchive, clone) remain.
  if (!canAdminister || study.archivedAt) return null;
  const editable = study.status === 'draft' || study.status === 'awaiting_approvals';
  const stoppable = editable || study.status === 'running';
  const open = (c: StudyCommand) => {
    command.reset();
    setConfirm(c);
  };
  return (
    <div className="row actions">
      {editable ? (
        <Link to={`/studies/${study.id}/edit`} className="button button-secondary">
          New plan version
        </Link>
      ) : null}
      {study.status === 'draft' ? (
        <button type="button" className="button button-primary" onClick={() => open('submit')}>
          Submit for approval
        </button>
      ) : null}
      {study.status === 'awaiting_approvals' ? (
        <button type="button" className="button button-primary" onClick={() => open('start')}>
          Start the study
        </button>
      ) : null}
      {stoppable ? (
        <button type="button" className="button button-danger-outline" onClick={() => open('stop')}>
          Stop
        </button>
      ) : null}
      <ConfirmDialog
        open={confirm === 'submit'}
        title="Submit the plan to the invited silos?"
        confirmLabel="Submit"
        tone="primary"
        busy={command.isPending}
        error={command.error}
        onCancel={() => setConfirm(null)}
        onConfirm={(reason) => command.mutate({ c: 'submit', reason })}
      >
        <p>
          Each invited silo&apos;s agent then shows plan version {study.planVersion} to its data steward, who approves
          or rejects its exact hash.
        </p>
      </ConfirmDialog>
      <ConfirmDialog
        open={confirm === 'start'}
        title="Start the study?"
        confirmLabel="Start"
        tone="primary"
        busy={command.isPending}
        error={command.error}
        onCancel={() => setConfirm(null)}
        onConfirm={(reason) => command.mutate({ c: 'start', reason })}
      >
        <p>
          It starts with the silos that approved plan version {study.planVersion} (
          {study.decisions.filter((d) => d.decision === 'approve').length} of {study.plan.silos.length}); at least{' '}
          {study.plan.participation.minSilosPerRound} are needed.
        </p>
      </ConfirmDialog>
      <ConfirmDialog
        open={confirm === 'stop'}
        title="Stop the study?"
        confirmLabel="Stop the study"
        reasonLabel="Reason"
        busy={command.isPending}
        error={command.error}
        onCancel={() => setConfirm(null)}
        onConfirm={(reason) => command.mutate({ c: 'stop', reason })}
      >
        <p>Open rounds are abandoned and no silo trains for it again. This cannot be undone.</p>
      </ConfirmDialog>
    </div>
  );
}

function Approvals({ study }: { study: StudyView }) {
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

/** Silo names by id: from the study's decisions, and from the rounds for silos no longer invited. */
function siloNamesOf(study: StudyView, rounds: readonly RoundView[]): Map<string, string> {
  const names = new Map(rounds.flatMap((r) => r.participants.map((p) => [p.siloId, p.siloName] as const)));
  for (const d of study.decisions) names.set(d.siloId, d.siloName);
  return names;
}

function CurrentRound({ study, rounds }: { study: StudyView; rounds: RoundView[] }) {
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

function Models({ study, rounds }: { study: StudyView; rounds: RoundView[] }) {
  const api = useApi();
  const canAdminister = useCanAdminister();
  const versions = modelVersions(rounds);
  return (
    <>
      {study.status === 'completed' && study.currentModelHash ? (
        <div className="final-model">
          <p>
            Final model{' '}
            <span className="mono" title={study.currentModelHash}>
              {shortHash(study.currentModelHash, 24)}
            </span>{' '}
            <CopyButton text={study.currentModelHash} label="Copy hash" className="button button-small button-ghost" />
          </p>
          {canAdminister ? (
            <div className="row">
              <DownloadButton fetchFile={() => api.modelFile(study.id, 'model.json')}>
                model.json (TensorFlow.js)
              </DownloadButton>
              <DownloadButton fetchFile={() => api.modelFile(study.id, 'weights.bin')}>weights.bin</DownloadButton>
              <DownloadButton fetchFile={() => api.modelFile(study.id, 'model.onnx')}>model.onnx (ONNX)</DownloadButton>
            </div>
          ) : (
            <p className="hint">
              Model files are downloaded by administrators (the download is recorded in the audit trail).
            </p>
          )}
        </div>
      ) : (
        <p className="hint">The final model can be downloaded once the study has completed.</p>
      )}
      {versions.length === 0 ? (
        <EmptyState title="No model yet">The initial model is published when the first round opens.</EmptyState>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Version</th>
                <th scope="col">Produced by</th>
                <th scope="col">SHA-256</th>
                <th scope="col">When</th>
              </tr>
            </thead>
            <tbody>
              {versions.map((v) => (
                <tr key={`${v.version}-${v.hash}`}>
                  <th scope="row">{v.version === 0 ? 'initial' : `v${v.version}`}</th>
                  <td>{v.round === null ? `seed ${study.plan.training.initSeed}` : `round ${v.round}`}</td>
                  <td className="mono small" title={v.hash}>
                    {shortHash(v.hash, 24)}
                    {v.hash === study.currentModelHash ? ' (current)' : ''}
                  </td>
                  <td className="nowrap">{formatTime(v.at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
