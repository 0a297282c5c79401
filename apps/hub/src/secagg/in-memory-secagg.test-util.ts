import { AsyncLocalStorage } from 'node:async_hooks';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { RowLocks, UniqueViolation } from '../silos/in-memory-silos.test-util';
import type { SiloIdentity } from '../silos/silo-identity';
import type { ParticipantStatus } from '../study-state/round-participant.entity';
import { SecAggMessageEntity, type SecAggMessageStage } from './secagg-message.entity';
import { SecAggSessionEntity } from './secagg-session.entity';
import type {
  NewSecAggSession,
  OpenTransaction,
  SecAggOpening,
  SecAggRepository,
  SecAggSessionChanges,
  SecAggStore,
} from './secagg.repository';

/** Everything the secure-aggregation services read and write through. */
export type SecAggPort = Pick<
  SecAggRepository,
  'inTransaction' | 'within' | 'outside' | 'openRoundId' | 'exists' | 'find' | 'get'
>;

/** A silo's certificate as the advertisement check reads it (`silo_certificates`). */
export interface CertificateRow {
  siloId: string;
  status: 'active' | 'superseded' | 'revoked';
  notBefore: Date;
  certificatePem: string;
}

/** The columns of `round_participants` a complete session changes. */
export interface ParticipantRow {
  roundId: string;
  siloId: string;
  status: ParticipantStatus;
  reportedAt: Date | null;
}

const STAGES = new Set(['advertise', 'share', 'upload', 'unmask', 'complete', 'failed']);
const AUTOCOMMIT = 0;

const messageKey = (roundId: string, siloId: string, stage: string) => `${roundId}/${siloId}/${stage}`;
const participantKey = (roundId: string, siloId: string) => `${roundId}/${siloId}`;

/** A row as a new read returns it: jsonb and bytea come back as fresh values, never the stored objects. */
const sessionCopy = (row: SecAggSessionEntity): SecAggSessionEntity =>
  Object.assign(new SecAggSessionEntity(), structuredClone({ ...row }), {
    maskedSum: row.maskedSum ? Buffer.from(row.maskedSum) : null,
  });
const messageCopy = (row: SecAggMessageEntity): SecAggMessageEntity =>
  Object.assign(new SecAggMessageEntity(), structuredClone({ ...row }));

/**
 * `secagg_sessions`, `secagg_messages`, and the rows of `silo_certificates` and `round_participants` secure aggregation
 * reads or changes, in memory, with what the services rely on: the tables' primary keys (`secagg_sessions_pkey` on
 * the round, `secagg_messages_pkey` on round, silo and stage) and the stage's CHECK; row locks (FOR UPDATE, and the
 * lock an UPDATE takes) held until the transaction ends, queued first in, first out; READ COMMITTED reads (what
 * committed before the statement plus the transaction's own writes; a read after a lock wait sees the holder's
 * commit); an insert that collides with a row another transaction has not committed waits for it and fails if it
 * commits; and a transaction commits only when its work resolves. `openTransaction`/`didCommit` let a spec keep an
 * audit record only if the transaction it joined committed, as AmbientTransactions does.
 */
export class InMemorySecAgg implements SecAggPort {
  readonly committedSessions = new Map<string, SecAggSessionEntity>();
  readonly committedMessages = new Map<string, SecAggMessageEntity>();
  readonly committedParticipants = new Map<string, ParticipantRow>();
  readonly certificates: CertificateRow[] = [];
  /** The open round each study has for silos, by `${studyId}/${number}` (what openRoundFor would find). */
  readonly openRounds = new Map<string, string>();
  readonly locks = new RowLocks();
  private readonly open = new Map<number, FakeTransaction>();
  private readonly context = new AsyncLocalStorage<number>();
  private readonly committedIds = new Set<number>();
  private transactions = 0;
  /** Statements run, in order, with their transaction: what a spec can check the order of locks and writes by. */
  readonly statements: { tx: number; statement: string }[] = [];
  private readonly autocommit = new FakeTransaction(this, AUTOCOMMIT, Promise.resolve());

  openTransaction(): number | undefined {
    return this.context.getStore();
  }

  didCommit(transaction: number): boolean {
    return this.committedIds.has(transaction);
  }

  async inTransaction<T>(work: (tx: SecAggStore) => Promise<T>): Promise<T> {
    const id = ++this.transactions;
    let end!: () => void;
    const tx = new FakeTransaction(this, id, new Promise<void>((resolve) => (end = resolve)));
    this.open.set(id, tx);
    try {
      const result = await this.context.run(id, () => work(tx));
      for (const [k, row] of tx.sessionWrites) this.committedSessions.set(k, row);
      for (const [k, row] of tx.messageWrites) this.committedMessages.set(k, row);
      for (const [k, row] of tx.participantWrites) this.committedParticipants.set(k, row);
      this.committedIds.add(id);
      return result;
    } finally {
      this.open.delete(id);
      tx.ended = true;
      for (const release of tx.releases) release();
      end();
    }
  }

  /** The opener's transaction, as the round engine hands it over (a transaction of this double). */
  within(tx: OpenTransaction): SecAggOpening {
    return this.handle(tx as unknown as FakeTransaction);
  }

  outside(): Pick<SecAggStore, 'messages' | 'identityCertificates'> {
    return this.autocommit;
  }

  openRoundId(_silo: SiloIdentity, studyId: string, roundNumber: number): Promise<string> {
    const roundId = this.openRounds.get(`${studyId}/${roundNumber}`);
    if (!roundId) return Promise.reject(new HubException(HubErrorCode.NOT_FOUND, `No study ${studyId} is open.`));
    return Promise.resolve(roundId);
  }

  exists(roundId: string): Promise<boolean> {
    return Promise.resolve(this.committedSessions.has(roundId));
  }

  find(roundId: string): Promise<SecAggSessionEntity | null> {
    const row = this.committedSessions.get(roundId);
    return Promise.resolve(row ? sessionCopy(row) : null);
  }

  get(roundId: string): Promise<SecAggSessionEntity> {
    const row = this.committedSessions.get(roundId);
    return row ? Promise.resolve(sessionCopy(row)) : Promise.reject(new Error(`No secagg session ${roundId}.`));
  }

  /** The transactions still open other than `t`: an insert waits for the one that wrote its key. */
  othersWriting(t: FakeTransaction, key: string): FakeTransaction | undefined {
    return [...this.open.values()].find((o) => o !== t && (o.messageWrites.has(key) || o.sessionWrites.has(key)));
  }

  handle(t: FakeTransaction): FakeTransaction {
    if (t.id !== AUTOCOMMIT && (t.ended || !this.open.has(t.id))) throw new Error(`transaction ${t.id} has ended`);
    return t;
  }
}

/** One transaction of the double: its own writes over the committed rows, and the row locks it holds. */
class FakeTransaction implements SecAggStore, SecAggOpening {
  readonly sessionWrites = new Map<string, SecAggSessionEntity>();
  readonly messageWrites = new Map<string, SecAggMessageEntity>();
  readonly participantWrites = new Map<string, ParticipantRow>();
  readonly releases: (() => void)[] = [];
  private readonly held = new Set<string>();
  ended = false;

  constructor(
    private readonly db: InMemorySecAgg,
    readonly id: number,
    /** Resolves when the transaction has committed or rolled back. */
    readonly done: Promise<void>,
  ) {}

  async insertSession(row: NewSecAggSession): Promise<SecAggSessionEntity> {
    this.live('insert session');
    if (!STAGES.has(row.stage)) throw new Error(`secagg_sessions_stage_check: ${row.stage}`);
    await this.awaitKey(row.roundId, () => this.visibleSession(row.roundId) !== undefined, 'secagg_sessions_pkey');
    const session = Object.assign(new SecAggSessionEntity(), row);
    this.write(this.sessionWrites, this.db.committedSessions, row.roundId, sessionCopy(session));
    return session;
  }

  async lockSession(roundId: string): Promise<SecAggSessionEntity | null> {
    this.live(`lock session ${roundId}`);
    await this.lock(`session:${roundId}`);
    const row = this.visibleSession(roundId);
    return row ? sessionCopy(row) : null;
  }

  async updateSession(roundId: string, changes: SecAggSessionChanges): Promise<void> {
    this.live(`update session ${roundId} ${Object.keys(changes).join(',')}`);
    if (changes.stage !== undefined && !STAGES.has(changes.stage)) {
      throw new Error(`secagg_sessions_stage_check: ${changes.stage}`);
    }
    await this.lock(`session:${roundId}`);
    const row = this.visibleSession(roundId);
    if (!row) return;
    this.write(
      this.sessionWrites,
      this.db.committedSessions,
      roundId,
      sessionCopy(Object.assign(sessionCopy(row), changes)),
    );
  }

  messages(roundId: string, stage: SecAggMessageStage): Promise<SecAggMessageEntity[]> {
    this.live(`read ${stage} messages`);
    return Promise.resolve(this.messagesOf(roundId, stage).map(messageCopy));
  }

  private messagesOf(roundId: string, stage: SecAggMessageStage): SecAggMessageEntity[] {
    const rows = [...new Map([...this.db.committedMessages, ...this.messageWrites]).values()];
    return rows
      .filter((m) => m.roundId === roundId && m.stage === stage)
      .sort((a, b) => (a.siloId < b.siloId ? -1 : a.siloId > b.siloId ? 1 : 0));
  }

  message(roundId: string, siloId: string, stage: SecAggMessageStage): Promise<SecAggMessageEntity | null> {
    this.live(`read message ${siloId} ${stage}`);
    const key = messageKey(roundId, siloId, stage);
    const row = this.messageWrites.get(key) ?? this.db.committedMessages.get(key);
    return Promise.resolve(row ? messageCopy(row) : null);
  }

  async saveMessage(message: SecAggMessageEntity): Promise<void> {
    this.live(`save message ${message.siloId} ${message.stage}`);
    const key = messageKey(message.roundId, message.siloId, message.stage);
    // TypeORM's save reads the key first: an existing row is updated (under its row lock), a new one inserted.
    if (this.messageWrites.has(key) || this.db.committedMessages.has(key)) {
      await this.lock(`message:${key}`);
    } else {
      await this.awaitKey(key, () => this.db.committedMessages.has(key), 'secagg_messages_pkey');
    }
    this.write(this.messageWrites, this.db.committedMessages, key, messageCopy(message));
  }

  identityCertificates(siloIds: readonly string[]): Promise<Map<string, string>> {
    if (siloIds.length === 0) return Promise.resolve(new Map<string, string>());
    const certs = this.db.certificates
      .filter((c) => siloIds.includes(c.siloId) && c.status === 'active')
      .sort((a, b) => a.notBefore.getTime() - b.notBefore.getTime());
    return Promise.resolve(new Map(certs.map((c) => [c.siloId, c.certificatePem])));
  }

  async markReported(roundId: string, siloIds: readonly string[], at: Date): Promise<void> {
    this.live(`mark reported ${siloIds.length}`);
    for (const siloId of siloIds) {
      const key = participantKey(roundId, siloId);
      if (!this.participantWrites.has(key) && !this.db.committedParticipants.has(key)) continue;
      await this.lock(`participant:${key}`);
      const row = this.participantWrites.get(key) ?? this.db.committedParticipants.get(key)!;
      if (row.status !== 'waiting') continue;
      this.write(this.participantWrites, this.db.committedParticipants, key, {
        ...row,
        status: 'uploaded',
        reportedAt: at,
      });
    }
  }

  private visibleSession(roundId: string): SecAggSessionEntity | undefined {
    return this.sessionWrites.get(roundId) ?? this.db.committedSessions.get(roundId);
  }

  /** A row lock held until the transaction ends (an autocommit statement holds it for itself only). */
  private async lock(key: string): Promise<void> {
    if (this.held.has(key)) return;
    const release = await this.db.locks.acquire(key);
    if (this.id === AUTOCOMMIT) {
      release();
      return;
    }
    this.held.add(key);
    this.releases.push(release);
  }

  /** An insert's unique check: waits for another transaction that wrote the key, fails if the key is taken. */
  private async awaitKey(key: string, taken: () => boolean, constraint: string): Promise<void> {
    for (;;) {
      if (taken()) throw new UniqueViolation(constraint);
      const pending = this.db.othersWriting(this, key);
      if (!pending) return;
      await pending.done;
    }
  }

  private write<T>(mine: Map<string, T>, committed: Map<string, T>, key: string, row: T): void {
    if (this.id === AUTOCOMMIT) committed.set(key, row);
    else mine.set(key, row);
  }

  private live(statement: string): void {
    this.db.handle(this);
    this.db.statements.push({ tx: this.id, statement });
  }
}
