import type { RoundScreeningView, RoundView, StudyPlan } from '@tessera/protocol';
import { formatSignificant } from '../lib/format.js';
import { Badge, EmptyState, Notice } from '../ui/feedback.js';

type ScreenedUpdate = RoundScreeningView['updates'][number];

/** A training round that was screened when it closed (or closed short because screening left too many out). */
interface ScreenedRound {
  number: number;
  attempt: number;
  screening: RoundScreeningView;
}

function screenedRounds(rounds: readonly RoundView[]): ScreenedRound[] {
  return rounds.flatMap((r) =>
    r.kind === 'train' && r.summary?.screening
      ? [{ number: r.number, attempt: r.attempt, screening: r.summary.screening }]
      : [],
  );
}

const label = (r: ScreenedRound): string => (r.attempt > 1 ? `${r.number} (attempt ${r.attempt})` : String(r.number));

/** One cell of the silo × round grid: nothing to say, flagged (kept), or flagged and left out. */
function Cell({ update }: { update: ScreenedUpdate | undefined }) {
  if (!update) return <span className="muted">not in round</span>;
  if (update.flags.length === 0) return <span className="muted">ok</span>;
  const reasons = update.flags.map((f) => f.reason).join('\n');
  return update.excluded ? (
    <Badge tone="danger" title={reasons}>
      excluded
    </Badge>
  ) : (
    <Badge tone="warning" title={reasons}>
      flagged
    </Badge>
  );
}

const cosine = (value: number | null): string => (value === null ? '—' : formatSignificant(value, 3));

/**
 * Update screening of a study, per silo and per round (docs/aggregation.md): a grid of every screened round's
 * verdict on each silo's update, then every flag with its reason, its figures and what was done with the update.
 * The figures are the hub's own measurements of each update; under DP-FedAvg they are not covered by the privacy
 * guarantee (the plan lists them as released without DP).
 */
export function UpdateScreening({
  plan,
  rounds,
  siloNames,
}: {
  plan: StudyPlan;
  rounds: readonly RoundView[];
  /** Names of the silos by id (those of the study's decisions and rounds). */
  siloNames: ReadonlyMap<string, string>;
}) {
  if (!plan.screening) return <p className="hint">This plan does not screen the updates.</p>;
  const screened = screenedRounds(rounds);
  if (screened.length === 0) {
    return (
      <EmptyState title="No round screened yet">
        Each training round’s updates are screened when the round closes.
      </EmptyState>
    );
  }
  const silos = [...new Set(screened.flatMap((r) => r.screening.updates.map((u) => u.siloId)))];
  const name = (id: string) => siloNames.get(id) ?? id;
  const flags = screened.flatMap((r) =>
    r.screening.updates.filter((u) => u.flags.length > 0).map((u) => ({ round: r, update: u })),
  );
  const updates = screened.reduce((n, r) => n + r.screening.updates.length, 0);
  return (
    <>
      <p className="hint">
        Threshold {plan.screening.threshold} robust deviations from each round’s median;{' '}
        {plan.screening.exclude ? 'flagged updates are left out of the aggregate.' : 'flagged updates are kept.'}{' '}
        {flags.length === 0
          ? `No update flagged in ${screened.length} screened round${screened.length === 1 ? '' : 's'}.`
          : `${flags.length} of ${updates} updates flagged in ${screened.length} screened round${screened.length === 1 ? '' : 's'}.`}
      </p>
      <div className="table-wrap">
        <table className="table" aria-label="Screening per silo and round">
          <thead>
            <tr>
              <th scope="col">Silo</th>
              {screened.map((r) => (
                <th scope="col" key={`${r.number}-${r.attempt}`}>
                  Round {label(r)}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {silos.map((siloId) => (
              <tr key={siloId} data-silo={name(siloId)}>
                <th scope="row">{name(siloId)}</th>
                {screened.map((r) => (
                  <td key={`${r.number}-${r.attempt}`}>
                    <Cell update={r.screening.updates.find((u) => u.siloId === siloId)} />
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {screened
        .filter((r) => r.screening.notAggregated)
        .map((r) => (
          <Notice tone="warning" key={`short-${r.number}-${r.attempt}`}>
            Round {label(r)}: {r.screening.notAggregated}.
          </Notice>
        ))}
      {flags.length > 0 ? (
        <div className="table-wrap">
          <table className="table" aria-label="Flagged updates">
            <thead>
              <tr>
                <th scope="col">Round</th>
                <th scope="col">Silo</th>
                <th scope="col">L2 norm</th>
                <th scope="col">Cosine to the aggregate</th>
                <th scope="col">Cosine to the previous update</th>
                <th scope="col">Why</th>
              </tr>
            </thead>
            <tbody>
              {flags.map(({ round, update }) => (
                <tr key={`${round.number}-${round.attempt}-${update.siloId}`} data-flagged={name(update.siloId)}>
                  <td>{label(round)}</td>
                  <th scope="row">{name(update.siloId)}</th>
                  <td>{formatSignificant(update.norm, 4)}</td>
                  <td>{cosine(update.cosineToAggregate)}</td>
                  <td>{cosine(update.cosineToPrevious)}</td>
                  <td>
                    <ul>
                      {update.flags.map((f) => (
                        <li key={f.statistic}>{f.reason}</li>
                      ))}
                    </ul>
                    <span className="small">
                      {update.excluded ? 'Left out of the aggregate.' : 'Kept in the aggregate.'}
                    </span>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </>
  );
}
