import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, In, type EntityManager } from 'typeorm';
import { SiloCertificateEntity } from '../silos/silo-certificate.entity';
import type { SiloIdentity } from '../silos/silo-identity';
import { openRoundFor } from '../study-state/open-round.util';
import { RoundParticipantEntity } from '../study-state/round-participant.entity';
import { SecAggMessageEntity, type SecAggMessageStage } from './secagg-message.entity';
import { SecAggSessionEntity } from './secagg-session.entity';

/**
 * A transaction another feature opened (the round opener opens a round and its session together). Services pass it
 * on and never run SQL on it.
 */
export type OpenTransaction = EntityManager;

/** A session row as inserted (every column: the hub sets them all). */
export type NewSecAggSession = Pick<SecAggSessionEntity, keyof SecAggSessionEntity>;

/** The columns a stage's close, an exclusion or an accepted masked input change. */
export type SecAggSessionChanges = Partial<
  Pick<
    SecAggSessionEntity,
    'stage' | 'advertised' | 'exclusions' | 'routing' | 'unmaskingPlan' | 'maskedSum' | 'contributors' | 'failure'
  >
>;

/**
 * The secure-aggregation tables within one transaction (SecAggRepository.inTransaction), or outside any for the
 * reads that take no lock.
 */
export interface SecAggStore {
  /**
   * The round's session, its row locked until the transaction ends (FOR UPDATE): every decision about a session (a
   * stage's close, a message's acceptance) is taken under it, so two hubs or two requests decide one after the other.
   * Null when the round runs no secure aggregation.
   */
  lockSession(roundId: string): Promise<SecAggSessionEntity | null>;
  updateSession(roundId: string, changes: SecAggSessionChanges): Promise<void>;
  /** The messages of a stage, by silo id. */
  messages(roundId: string, stage: SecAggMessageStage): Promise<SecAggMessageEntity[]>;
  /** The silo's message at that stage, if the hub holds one. */
  message(roundId: string, siloId: string, stage: SecAggMessageStage): Promise<SecAggMessageEntity | null>;
  /** Stores a message (its key is round, silo and stage: a silo sends one per stage). */
  saveMessage(message: SecAggMessageEntity): Promise<void>;
  /** Each silo's active certificate (PEM), the newest winning when a renewal overlaps its predecessor. */
  identityCertificates(siloIds: readonly string[]): Promise<Map<string, string>>;
  /** Marks the survivors still 'waiting' in the round as 'uploaded' at `at` (their inputs are in the sum). */
  markReported(roundId: string, siloIds: readonly string[], at: Date): Promise<void>;
}

/** The round-opening writes, inside the opener's transaction. */
export interface SecAggOpening {
  insertSession(row: NewSecAggSession): Promise<SecAggSessionEntity>;
}

/**
 * The data access of secagg/: the `secagg_sessions` and `secagg_messages` tables, the reads of `silo_certificates`
 * an advertisement is checked against, and the `round_participants` update a complete session makes. The only code of
 * secagg/ that runs SQL or uses TypeORM; the services keep the protocol's rules, and their unit specs replace this
 * with a double (in-memory-secagg.test-util.ts).
 */
@Injectable()
export class SecAggRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /** Runs `work` in one transaction; it commits when `work` resolves (audit records written in it join it). */
  inTransaction<T>(work: (tx: SecAggStore) => Promise<T>): Promise<T> {
    return this.db.transaction((manager) => work(new SecAggTables(manager)));
  }

  /** The session's opening inside the transaction that opens its round. */
  within(tx: OpenTransaction): SecAggOpening {
    return new SecAggTables(tx);
  }

  /** The reads outside any transaction. */
  outside(): Pick<SecAggStore, 'messages' | 'identityCertificates'> {
    return new SecAggTables(this.db.manager);
  }

  /** The id of the study's open round `roundNumber` as this silo may report to it (openRoundFor's refusals). */
  async openRoundId(silo: SiloIdentity, studyId: string, roundNumber: number): Promise<string> {
    const { round } = await openRoundFor(this.db, silo, studyId, roundNumber);
    return round.id;
  }

  /** Whether the round runs secure aggregation. */
  exists(roundId: string): Promise<boolean> {
    return this.db.getRepository(SecAggSessionEntity).existsBy({ roundId });
  }

  find(roundId: string): Promise<SecAggSessionEntity | null> {
    return this.db.getRepository(SecAggSessionEntity).findOneBy({ roundId });
  }

  /** The round's session; throws (EntityNotFoundError) when there is none. */
  get(roundId: string): Promise<SecAggSessionEntity> {
    return this.db.getRepository(SecAggSessionEntity).findOneByOrFail({ roundId });
  }
}

class SecAggTables implements SecAggStore, SecAggOpening {
  constructor(private readonly m: EntityManager) {}

  async insertSession(row: NewSecAggSession): Promise<SecAggSessionEntity> {
    const session = this.m.getRepository(SecAggSessionEntity).create(row);
    await this.m.getRepository(SecAggSessionEntity).insert(session);
    return session;
  }

  lockSession(roundId: string): Promise<SecAggSessionEntity | null> {
    return this.m
      .getRepository(SecAggSessionEntity)
      .findOne({ where: { roundId }, lock: { mode: 'pessimistic_write' } });
  }

  async updateSession(roundId: string, changes: SecAggSessionChanges): Promise<void> {
    await this.m.getRepository(SecAggSessionEntity).update({ roundId }, changes);
  }

  messages(roundId: string, stage: SecAggMessageStage): Promise<SecAggMessageEntity[]> {
    return this.m.getRepository(SecAggMessageEntity).find({ where: { roundId, stage }, order: { siloId: 'ASC' } });
  }

  message(roundId: string, siloId: string, stage: SecAggMessageStage): Promise<SecAggMessageEntity | null> {
    return this.m.getRepository(SecAggMessageEntity).findOneBy({ roundId, siloId, stage });
  }

  async saveMessage(message: SecAggMessageEntity): Promise<void> {
    await this.m.getRepository(SecAggMessageEntity).save(message);
  }

  async identityCertificates(siloIds: readonly string[]): Promise<Map<string, string>> {
    if (siloIds.length === 0) return new Map();
    const certs = await this.m.getRepository(SiloCertificateEntity).find({
      where: { siloId: In([...siloIds]), status: 'active' },
      order: { notBefore: 'ASC' },
    });
    // The newest active certificate wins (a renewal overlaps its predecessor briefly).
    return new Map(certs.map((c) => [c.siloId, c.certificatePem]));
  }

  async markReported(roundId: string, siloIds: readonly string[], at: Date): Promise<void> {
    await this.m
      .getRepository(RoundParticipantEntity)
      .update({ roundId, siloId: In([...siloIds]), status: 'waiting' }, { status: 'uploaded', reportedAt: at });
  }
}
