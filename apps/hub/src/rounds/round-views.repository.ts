import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, In } from 'typeorm';
import { SiloEntity } from '../silos/silo.entity';
import { RoundParticipantEntity } from '../study-state/round-participant.entity';
import { RoundEntity } from '../study-state/round.entity';

/** A task waiting for a silo, as read from the database. */
export interface PendingTaskRow {
  study_id: string;
  number: number;
  attempt: number;
  kind: 'train' | 'evaluate';
  model_hash: string;
  deadline_at: Date;
  plan_version: number;
  plan_hash: string;
  /** SCAFFOLD's control variate c for a training task (null: c = 0, or another algorithm). */
  control_variate_hash: string | null;
}

/** A study's round attempts with their participants' rows and the names of those silos. */
export interface RoundHistoryRows {
  rounds: RoundEntity[];
  participants: RoundParticipantEntity[];
  siloNames: Map<string, string>;
}

/**
 * Every blob a database row can name: published and resulting models, accepted updates, the current model, the
 * server optimizer's state and SCAFFOLD's control variate. A blob named by none of them is an orphan.
 */
export const REFERENCED_BLOBS = `
  SELECT model_hash AS hash FROM rounds
  UNION SELECT result_model_hash FROM rounds WHERE result_model_hash IS NOT NULL
  UNION SELECT update_hash FROM round_participants WHERE update_hash IS NOT NULL
  UNION SELECT current_model_hash FROM studies WHERE current_model_hash IS NOT NULL
  UNION SELECT optimizer_state_hash FROM studies WHERE optimizer_state_hash IS NOT NULL
  UNION SELECT control_variate_hash FROM studies WHERE control_variate_hash IS NOT NULL`;

/**
 * The reads of rounds/ that no transition takes part in: silos' tasks and what was published to them, a study's
 * round history, and the blobs rows name. No transaction, no lock.
 */
@Injectable()
export class RoundViewsRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /**
   * The tasks waiting for this silo: its waiting rows of open rounds of running studies, oldest round first. Under
   * secure aggregation a silo that answered the round's unmasking request has done its part (its row turns
   * 'uploaded' only when the session completes): its task is not offered again meanwhile.
   */
  async pendingTasks(siloId: string): Promise<PendingTaskRow[]> {
    return await this.db.query<PendingTaskRow[]>(
      `SELECT r.study_id, r.number, r.attempt, r.kind, r.model_hash, r.deadline_at, s.plan_version, s.plan_hash,
              CASE WHEN r.kind = 'train' THEN s.control_variate_hash END AS control_variate_hash
         FROM round_participants p
         JOIN rounds r ON r.id = p.round_id
         JOIN studies s ON s.id = r.study_id
        WHERE p.silo_id = $1 AND p.status = 'waiting' AND r.status = 'open' AND s.status = 'running'
          AND NOT EXISTS (SELECT 1 FROM secagg_messages m
                           WHERE m.round_id = r.id AND m.silo_id = p.silo_id AND m.stage = 'unmask')
        ORDER BY r.opened_at`,
      [siloId],
    );
  }

  /**
   * Whether `hash` is a model published to this silo (a round it takes part in started from it) or the SCAFFOLD
   * control variate of a study it takes part in.
   */
  async publishedTo(siloId: string, hash: string): Promise<boolean> {
    const [row] = await this.db.query<unknown[]>(
      `SELECT 1 FROM rounds r JOIN round_participants p ON p.round_id = r.id
        WHERE p.silo_id = $1 AND r.model_hash = $2
       UNION ALL
       SELECT 1 FROM studies s JOIN rounds r ON r.study_id = s.id JOIN round_participants p ON p.round_id = r.id
        WHERE p.silo_id = $1 AND s.control_variate_hash = $2
       LIMIT 1`,
      [siloId, hash],
    );
    return row !== undefined;
  }

  /** The study's attempts in order (number, then attempt), their participants and those silos' names. */
  async history(studyId: string): Promise<RoundHistoryRows> {
    const rounds = await this.db
      .getRepository(RoundEntity)
      .find({ where: { studyId }, order: { number: 'ASC', attempt: 'ASC' } });
    if (!rounds.length) return { rounds, participants: [], siloNames: new Map() };
    const participants = await this.db
      .getRepository(RoundParticipantEntity)
      .find({ where: { roundId: In(rounds.map((r) => r.id)) } });
    const silos = await this.db
      .getRepository(SiloEntity)
      .find({ where: { id: In([...new Set(participants.map((p) => p.siloId))]) } });
    return { rounds, participants, siloNames: new Map(silos.map((s) => [s.id, s.name])) };
  }

  /** The hashes of every blob a row names (REFERENCED_BLOBS). */
  async referencedBlobs(): Promise<Set<string>> {
    const rows = await this.db.query<{ hash: string }[]>(REFERENCED_BLOBS);
    return new Set(rows.map((r) => r.hash.trim()));
  }
}
