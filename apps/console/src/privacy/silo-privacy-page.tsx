import { useQuery } from '@tanstack/react-query';
import type { SiloPrivacyView, SiloStudyPrivacyView } from '@tessera/protocol';
import { Link, useParams } from 'react-router';
import { useApi } from '../auth/session-context.js';
import { formatSignificant } from '../lib/format.js';
import { gaugeReading } from '../lib/privacy-gauge.js';
import { StudyStatusBadge } from '../study/study-status.js';
import { EmptyState, ErrorMessage, Loading } from '../ui/feedback.js';
import { usePageTitle } from '../ui/page-title.js';

const MODE_LABEL: Record<SiloStudyPrivacyView['mode'], string> = {
  'dp-sgd': 'DP-SGD, unit: one record',
  'dp-fedavg': 'DP-FedAvg, unit: the whole silo',
  none: 'no differential privacy',
};

/**
 * One silo's privacy across every study it was invited to (GET /api/silos/:id/privacy): ε spent on its data by
 * study, against each study's plan and target, and the basic-composition total (an upper bound; see docs/privacy.md).
 */
export function SiloPrivacyPage() {
  const { id = '' } = useParams();
  const api = useApi();
  const page = useQuery({
    queryKey: ['silo-privacy', id],
    queryFn: () => api.siloPrivacy(id),
    refetchInterval: 15_000,
  });
  usePageTitle(page.data ? `Privacy of ${page.data.siloName}` : 'Privacy of a silo');
  if (page.isPending) return <Loading label="Loading the silo's privacy spend…" />;
  if (page.isError) {
    return (
      <section className="page">
        <p className="crumbs">
          <Link to="/privacy">← Privacy</Link>
        </p>
        <ErrorMessage error={page.error} title="The silo's privacy spend could not be loaded" />
      </section>
    );
  }
  const p = page.data;
  return (
    <section className="page" aria-labelledby="silo-privacy-title">
      <p className="crumbs">
        <Link to="/privacy">← Privacy</Link> · <Link to={`/silos/${p.siloId}`}>{p.siloName}</Link>
      </p>
      <h1 id="silo-privacy-title">Privacy spent on {p.siloName}&apos;s data</h1>
      <TotalSummary page={p} />
      {p.studies.length === 0 ? (
        <EmptyState title="No study has been submitted to this silo">
          Drafts are not listed; once a study invites this silo it appears here with what it spends.
        </EmptyState>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <caption className="visually-hidden">ε spent on this silo&apos;s data, by study</caption>
            <thead>
              <tr>
                <th scope="col">Study</th>
                <th scope="col">Status</th>
                <th scope="col">Mechanism</th>
                <th scope="col">ε spent</th>
                <th scope="col">Planned ε</th>
                <th scope="col">Target ε</th>
                <th scope="col">δ</th>
                <th scope="col">Rounds charged</th>
                <th scope="col">Against the plan</th>
              </tr>
            </thead>
            <tbody>
              {p.studies.map((s) => (
                <StudyRow key={s.studyId} line={s} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function TotalSummary({ page }: { page: SiloPrivacyView }) {
  const t = page.total;
  const units = new Set(page.studies.filter((s) => s.unit !== null).map((s) => s.unit));
  return (
    <div className="notice" role="note" aria-label="Total across studies">
      {t.studies === 0 ? (
        <p>No study with differential privacy has been submitted to this silo: there is no ε to total.</p>
      ) : (
        <p>
          <strong>
            Total over {t.studies} {t.studies === 1 ? 'study' : 'studies'} with DP: ε ≤ {upperFigure(t.epsilon)} at δ ≤{' '}
            {upperFigure(t.delta)}
          </strong>{' '}
          (basic composition: the sum of every study&apos;s ε and of every study&apos;s δ). This is an upper bound, and
          usually a loose one: the silo&apos;s agent composes every event it spent (an RDP sum,{' '}
          <code>tessera-agent budget</code>) and gets a smaller figure.
          {units.size > 1
            ? ' The studies protect different units (one record, the whole silo): the total bounds the record-level guarantee.'
            : ''}
        </p>
      )}
      {t.withoutPrivacy > 0 ? (
        <p>
          {t.withoutPrivacy} {t.withoutPrivacy === 1 ? 'study uses' : 'studies use'} no differential privacy: what
          {t.withoutPrivacy === 1 ? ' it reveals' : ' they reveal'} about this silo&apos;s data has no formal bound and
          is not in the total.
        </p>
      ) : null}
      <p>
        {page.cap
          ? `The silo's own cap: ε = ${page.cap.epsilon} at δ = ${page.cap.delta}.`
          : "The silo's own cap across studies is set in its agent (TESSERA_PRIVACY_CAP_EPSILON) and enforced there: the agent refuses work beyond it. The hub is not told the cap; ask the silo's IT team, or run tessera-agent budget at the silo."}
      </p>
    </div>
  );
}

function StudyRow({ line }: { line: SiloStudyPrivacyView }) {
  const reading = gaugeReading({ spent: line.epsilon, target: line.targetEpsilon, planned: line.plannedEpsilon });
  const dash = '—';
  return (
    <tr data-study={line.studyName}>
      <th scope="row">
        <Link to={`/studies/${line.studyId}`}>{line.studyName}</Link>
        {line.participant ? null : <span className="hint"> (not taking part)</span>}
      </th>
      <td>
        <StudyStatusBadge status={line.status} />
      </td>
      <td>{MODE_LABEL[line.mode]}</td>
      <td className="figure">{line.epsilon === null ? dash : formatSignificant(line.epsilon, 3)}</td>
      <td className="figure">{line.plannedEpsilon === null ? dash : formatSignificant(line.plannedEpsilon, 3)}</td>
      <td className="figure">{line.targetEpsilon ?? dash}</td>
      <td className="figure">{line.delta ?? dash}</td>
      <td className="figure">
        {line.trainingRounds === null ? dash : line.trainingRounds}
        {line.evaluationReleases ? ` + ${line.evaluationReleases} evaluation` : ''}
      </td>
      <td>
        {reading.state === 'none' ? (
          <span className="gauge-none">no DP</span>
        ) : (
          <div className="gauge-inline">
            <div
              className={`gauge-bar gauge-${reading.state}`}
              role="meter"
              aria-label={`Privacy budget of ${line.studyName} spent on this silo`}
              aria-valuemin={0}
              aria-valuemax={line.targetEpsilon ?? 0}
              aria-valuenow={line.epsilon ?? 0}
              aria-valuetext={`ε ${formatSignificant(line.epsilon ?? 0, 3)} of ${line.targetEpsilon}: ${reading.label}`}
            >
              <span style={{ width: `${(reading.fraction * 100).toFixed(1)}%` }} />
            </div>
            <span className={`gauge-state gauge-state-${reading.state}`}>{reading.label}</span>
          </div>
        )}
        {line.disagreements > 0 ? (
          <span className="hint">
            {' '}
            {line.disagreements} report{line.disagreements === 1 ? '' : 's'} disagreed with the hub
          </span>
        ) : null}
      </td>
    </tr>
  );
}

/**
 * A bound shown to three significant digits, rounded up (never shown smaller than it is), in exponent form below
 * 0.001 (δ): 2.4 → "2.4", 1.1e-5 → "1.1e-5", 0.123456 → "0.124".
 */
export function upperFigure(value: number): string {
  if (!Number.isFinite(value) || value === 0) return String(value);
  const scale = 10 ** (Math.floor(Math.log10(Math.abs(value))) - 2);
  // Rounding the quotient first keeps 2.4 (2.4000000000000004 / 0.01) from becoming 2.41.
  const n = Number((Math.ceil(Number((value / scale).toPrecision(12))) * scale).toPrecision(3));
  return Math.abs(n) < 1e-3 ? n.toExponential() : String(n);
}
