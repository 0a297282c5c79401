import { Injectable } from '@nestjs/common';
import type { RoundView } from '@tessera/protocol';
import type { RoundSummary } from '../study-state/round.entity';
import { RoundViewsRepository } from './round-views.repository';

/** The API's round view is the shared wire type (libs/protocol api-views). */
export type { RoundView };

/** Read side of rounds for administrators, auditors and the console. */
@Injectable()
export class RoundsQueryService {
  constructor(private readonly views: RoundViewsRepository) {}

  async roundsOf(studyId: string): Promise<RoundView[]> {
    const { rounds, participants, siloNames: names } = await this.views.history(studyId);
    return rounds.map((r) => {
      const { aggregationTrace: _trace, ...summary } = r.summary ?? ({} as RoundSummary);
      return {
        number: r.number,
        attempt: r.attempt,
        kind: r.kind,
        status: r.status,
        modelHash: r.modelHash,
        resultModelHash: r.resultModelHash,
        openedAt: r.openedAt.toISOString(),
        deadlineAt: r.deadlineAt.toISOString(),
        closedAt: r.closedAt?.toISOString() ?? null,
        closeReason: r.closeReason,
        summary: r.summary ? summary : null,
        participants: participants
          .filter((p) => p.roundId === r.id)
          .map((p) => ({
            siloId: p.siloId,
            siloName: names.get(p.siloId) ?? 'unknown',
            status: p.status,
            numExamples: p.numExamples,
            updateSha256: p.updateHash,
            evaluation: p.evaluation,
            failure: p.failure,
            privacy: p.privacy,
            ...(p.personalization ? { personalization: p.personalization } : {}),
          })),
      };
    });
  }
}
