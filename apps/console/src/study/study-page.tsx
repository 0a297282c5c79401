import { useQuery } from '@tanstack/react-query';
import { Link, useParams } from 'react-router';
import { describePlan, type ReleasePlan, type RoundView, type StudyView } from '@tessera/protocol';
import { useApi } from '../auth/session-context.js';
import { formatTime, shortHash } from '../lib/format.js';
import { studyEvaluationNoise } from '../lib/privacy-accounting.js';
import { roundInProgress } from '../lib/round-metrics.js';
import { ErrorMessage, Loading, Notice } from '../ui/feedback.js';
import { usePageTitle } from '../ui/page-title.js';
import { CurrentRound } from './current-round.js';
import { MetricCharts } from './metric-charts.js';
import { PrivacyBudget } from './privacy-budget.js';
import { ReleaseConsent } from './release-consent.js';
import { ReportPanel } from './report-panel.js';
import { StudyStatusBadge } from './study-status.js';
import { UpdateScreening } from './update-screening.js';
import { useStudyLive, type LiveState } from './use-study-live.js';
import { SiloColoursProvider } from './silo-colours.js';
import { StudyActions } from './study-actions.js';
import { StudyApprovals } from './study-approvals.js';
import { StudyDecisions, StudyPlanVersions, StudyRoundHistory } from './study-history-sections.js';
import { StudyLifecycleActions } from './study-lifecycle-actions.js';
import { StudyModels } from './study-models.js';
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
        <StudyApprovals study={s} />
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
        <StudyModels study={s} rounds={r} />
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

/** Silo names by id: from the study's decisions, and from the rounds for silos no longer invited. */
function siloNamesOf(study: StudyView, rounds: readonly RoundView[]): Map<string, string> {
  const names = new Map(rounds.flatMap((r) => r.participants.map((p) => [p.siloId, p.siloName] as const)));
  for (const d of study.decisions) names.set(d.siloId, d.siloName);
  return names;
}
