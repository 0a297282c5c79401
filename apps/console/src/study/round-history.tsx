import type { RoundHistoryView, SiloRoundCell, SiloRoundStatus } from '@tessera/protocol';
import { formatTime } from '../lib/format.js';
import { Badge, EmptyState, type Tone } from '../ui/feedback.js';
import { useSiloColours } from './silo-colours.js';

const CELL_TONE: Record<SiloRoundStatus, Tone> = {
  trained: 'success',
  evaluated: 'success',
  excluded: 'warning',
  waiting: 'neutral',
  late: 'warning',
  failed: 'danger',
  dropped: 'neutral',
};

/** A silo's colour swatch, the same as its line in the charts and in every study (lib/silo-colour.ts). */
export function SiloSwatch({ siloId }: { siloId: string }) {
  const colours = useSiloColours();
  return <span className="silo-swatch" aria-hidden="true" style={{ background: colours.of(siloId) }} />;
}

function Cell({ cell }: { cell: SiloRoundCell }) {
  return (
    <>
      <Badge tone={CELL_TONE[cell.status]} title={cell.reason ?? undefined}>
        {cell.status}
      </Badge>
      {cell.reason && cell.status !== 'late' ? <div className="small muted wrap">{cell.reason}</div> : null}
    </>
  );
}

/**
 * Every attempt of every round with what each silo did in it: trained (or evaluated), excluded by screening,
 * waiting, late, failed (with the silo's reason) or dropped. Rounds a silo missed stay listed.
 */
export function RoundHistory({ history }: { history: RoundHistoryView }) {
  if (history.rounds.length === 0) {
    return <EmptyState title="No round yet">Rounds are listed here from the first one on.</EmptyState>;
  }
  return (
    <div className="table-wrap">
      <table className="table round-history" aria-label="Round history">
        <thead>
          <tr>
            <th scope="col">Round</th>
            <th scope="col">Outcome</th>
            {history.silos.map((s) => (
              <th scope="col" key={s.id} data-silo-id={s.id}>
                <SiloSwatch siloId={s.id} /> {s.name}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {[...history.rounds].reverse().map((r) => (
            <tr key={`${r.number}-${r.attempt}`} data-round={r.number} data-attempt={r.attempt}>
              <th scope="row" className="nowrap">
                {r.kind === 'evaluate' ? 'Final evaluation' : `Round ${r.number}`}
                {r.attempt > 1 ? <span className="muted"> (attempt {r.attempt})</span> : null}
              </th>
              <td>
                <span className="nowrap">{r.status}</span>
                {r.closedAt ? <div className="small muted nowrap">{formatTime(r.closedAt)}</div> : null}
                {r.closeReason ? <div className="small muted wrap">{r.closeReason}</div> : null}
              </td>
              {r.silos.map((c) => (
                <td key={c.siloId}>
                  <Cell cell={c} />
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
