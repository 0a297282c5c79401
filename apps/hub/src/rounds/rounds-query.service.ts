import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { RoundView } from '@tessera/protocol';
import { DataSource, In } from 'typeorm';
import { SiloEntity } from '../silos/silo.entity';
import { RoundParticipantEntity } from '../study-state/round-participant.entity';
import { RoundEntity, type RoundSummary } from '../study-state/round.entity';

/** The API's round view is the shared wire type (libs/protocol api-views). */
export type { RoundView };

/** Read side of rounds for administrators, auditors and the console. */
@Injectable()
export class RoundsQueryService {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  async roundsOf(studyId: string): Promise<RoundView[]> {
    const rounds = await this.db
      .getRepository(RoundEntity)
      .find({ where: { studyId }, order: { number: 'ASC', attempt: 'ASC' } });
    if (!rounds.length) return [];
    const participants = await this.db
      .getRepository(RoundParticipantEntity)
      .find({ where: { roundId: In(rounds.map((r) => r.id)) } });
    const silos = await this.db
      .getRepository(SiloEntity)
      .find({ where: { id: In([...new Set(participants.map((p) => p.siloId))]) } });
    const names = new Map(silos.map((s) => [s.id, s.name]));
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
