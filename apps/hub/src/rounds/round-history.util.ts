import type {
  RoundHistoryEntry,
  RoundHistoryView,
  RoundParticipantView,
  RoundView,
  SiloRoundCell,
} from '@tessera/protocol';

/** The silos a history shows, in order: the study's own (participants, or invited before it starts), then others. */
export function historySilos(
  studySilos: readonly { id: string; name: string }[],
  rounds: readonly RoundView[],
): { id: string; name: string }[] {
  const out = new Map(studySilos.map((s) => [s.id, s.name]));
  for (const r of rounds) for (const p of r.participants) if (!out.has(p.siloId)) out.set(p.siloId, p.siloName);
  return [...out].map(([id, name]) => ({ id, name }));
}

function screeningReason(round: RoundView, siloId: string): string | null {
  const update = round.summary?.screening?.updates.find((u) => u.siloId === siloId);
  if (!update?.excluded) return null;
  const flags = update.flags.map((f) => f.statistic).join(', ');
  return `left out of the aggregate by update screening${flags ? ` (${flags})` : ''}`;
}

/**
 * One silo in one round attempt (see SiloRoundStatus for what each status means). `failedIn`: the round in which
 * the silo last failed before this attempt, which is why a study that carries on without it no longer asks it.
 */
export function siloRoundCell(round: RoundView, siloId: string, failedIn: number | null = null): SiloRoundCell {
  const p: RoundParticipantView | undefined = round.participants.find((x) => x.siloId === siloId);
  if (!p) {
    const reason = failedIn === null ? 'not asked in this attempt' : `dropped after its failure in round ${failedIn}`;
    return { siloId, status: 'dropped', reason };
  }
  switch (p.status) {
    case 'uploaded': {
      const excluded = screeningReason(round, siloId);
      return excluded ? { siloId, status: 'excluded', reason: excluded } : { siloId, status: 'trained', reason: null };
    }
    case 'evaluated':
      return { siloId, status: 'evaluated', reason: null };
    case 'late':
      return { siloId, status: 'late', reason: 'no report before the deadline' };
    case 'failed':
      return {
        siloId,
        status: 'failed',
        reason: p.failure ? `${p.failure.code}: ${p.failure.message}` : 'failure reported without a reason',
      };
    case 'waiting':
      if (round.status === 'open' || round.status === 'closing') return { siloId, status: 'waiting', reason: null };
      // The attempt ended without its report and without marking it late: the round was stopped or failed.
      return {
        siloId,
        status: 'dropped',
        reason: `round ${round.status}${round.closeReason ? `: ${round.closeReason}` : ''}`,
      };
  }
}

/** Every attempt of every round with every silo's cell, in the order of `silos`. */
export function roundHistory(
  studyId: string,
  studySilos: readonly { id: string; name: string }[],
  rounds: readonly RoundView[],
): RoundHistoryView {
  const silos = historySilos(studySilos, rounds);
  const failedIn = new Map<string, number>();
  const entries: RoundHistoryEntry[] = rounds.map((r) => {
    const cells = silos.map((s) => siloRoundCell(r, s.id, failedIn.get(s.id) ?? null));
    for (const c of cells) if (c.status === 'failed') failedIn.set(c.siloId, r.number);
    return {
      number: r.number,
      attempt: r.attempt,
      kind: r.kind,
      status: r.status,
      openedAt: r.openedAt,
      closedAt: r.closedAt,
      closeReason: r.closeReason,
      silos: cells,
    };
  });
  return { studyId, silos, rounds: entries };
}
