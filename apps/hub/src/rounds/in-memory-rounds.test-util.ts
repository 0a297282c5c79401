import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { RowLocks, UniqueViolation } from '../silos/in-memory-silos.test-util';
import type { SiloIdentity } from '../silos/silo-identity';
import { openRoundFor, studyOpenTo } from '../study-state/open-round.util';
import { RoundParticipantEntity } from '../study-state/round-participant.entity';
import { RoundEntity } from '../study-state/round.entity';
import { StudyEntity } from '../study-state/study.entity';
import type { OpenRoundReads } from '../study-state/study-state.repository';
import {
  CLOSE_LEASE_SECONDS,
  type AcceptedUpload,
  type OpenTransaction,
  type RoundsRepository,
  type RoundsUnitOfWork,
  type SavepointOutcome,
} from './rounds.repository';

/** What the round engine's services read and write through. */
export type RoundsPort = Pick<
  RoundsRepository,
  | 'inTransaction'
  | 'within'
  | 'expireAllClaims'
  | 'dueRounds'
  | 'renewClaim'
  | 'round'
  | 'study'
  | 'participantsOf'
  | 'closedRound'
  | 'studyOpenTo'
  | 'openRoundFor'
  | 'acceptedUploads'
>;

interface Tables {
  rounds: Map<string, RoundEntity>;
  participants: Map<string, RoundParticipantEntity>;
  studies: Map<string, StudyEntity>;
}

type TableName = keyof Tables;

/** The handle a transaction of the double hands the features below (the ledger's and secure aggregation's doubles). */
export interface FakeHandle {
  readonly transaction: number;
}

const copyOf = <T extends object>(row: T): T =>
  Object.assign(Object.create(Object.getPrototypeOf(row) as object) as T, row);

const participantKey = (roundId: string, siloId: string) => `${roundId}:${siloId}`;

const empty = (): Tables => ({ rounds: new Map(), participants: new Map(), studies: new Map() });

/** Where running code writes: its transaction and the savepoints it runs inside, innermost last. */
export interface WriteScope {
  readonly transaction: number;
  readonly savepoints: readonly number[];
}

/**
 * `rounds`, `round_participants` and the `studies` rows in memory, with the real tables' keys (the round's id,
 * `rounds_study_number_attempt`, the participant's (round, silo) key), row locks held until the transaction ends
 * (FOR UPDATE, and every UPDATE locks the rows it changes, as PostgreSQL does), READ COMMITTED reads (a statement
 * sees what committed before it plus its own transaction's writes; an UPDATE that waited for a lock re-checks its
 * condition on the row as committed), the database's `now()` (fixed at a transaction's start, movable with
 * `advance`), and commits only when the work resolves. `openTransaction()` says which transaction the running code
 * is in and `didCommit` whether it committed, so a spec keeps an audit record only if its transaction committed.
 */
export class InMemoryRounds implements RoundsPort {
  private committed: Tables = empty();
  private readonly locks = new RowLocks();
  private readonly context = new AsyncLocalStorage<WriteScope>();
  private readonly handles = new Map<FakeHandle, RoundsUnitOfWork>();
  private readonly committedIds = new Set<number>();
  private readonly rolledBackSavepoints = new Set<number>();
  private transactions = 0;
  private savepoints = 0;
  /**
   * Called at each COMMIT with the transaction's number; what it throws fails the commit (the transaction rolls back
   * and its work rejects with that error), as a database error at COMMIT would.
   */
  beforeCommit: ((transaction: number) => void) | null = null;
  private offsetMs = 0;
  /** Every row lock taken, in order (`round:<id>`, `study:<id>`, `participant:<round>:<silo>`), with its transaction. */
  readonly lockLog: { transaction: number; key: string }[] = [];

  openTransaction(): number | undefined {
    return this.context.getStore()?.transaction;
  }

  didCommit(transaction: number): boolean {
    return this.committedIds.has(transaction);
  }

  /** The transaction and savepoints the running code writes in (undefined outside any transaction). */
  openScope(): WriteScope | undefined {
    return this.context.getStore();
  }

  /** Whether what was written in `scope` was kept: its transaction committed and none of its savepoints rolled back. */
  didKeep(scope: WriteScope): boolean {
    return this.didCommit(scope.transaction) && !scope.savepoints.some((s) => this.rolledBackSavepoints.has(s));
  }

  /** Savepoints taken so far, in every transaction. */
  get savepointCount(): number {
    return this.savepoints;
  }

  /** The database's clock moves on (leases lapse). */
  advance(seconds: number): void {
    this.offsetMs += seconds * 1000;
  }

  dbNow(): Date {
    return new Date(Date.now() + this.offsetMs);
  }

  async inTransaction<T>(work: (tx: RoundsUnitOfWork) => Promise<T>): Promise<T> {
    const id = ++this.transactions;
    const writes = empty();
    const releases: (() => void)[] = [];
    const handle: FakeHandle = { transaction: id };
    const uow = this.unitOfWork(id, handle, writes, releases);
    this.handles.set(handle, uow);
    try {
      const result = await this.context.run({ transaction: id, savepoints: [] }, () => work(uow));
      this.beforeCommit?.(id);
      const next = this.merged(writes);
      this.checkUnique(next);
      this.committed = next;
      this.committedIds.add(id);
      return result;
    } finally {
      this.handles.delete(handle);
      for (const release of releases) release();
    }
  }

  within(tx: OpenTransaction): RoundsUnitOfWork {
    const uow = this.handles.get(tx as unknown as FakeHandle);
    if (!uow) throw new Error('not an open transaction of this double');
    return uow;
  }

  async expireAllClaims(): Promise<void> {
    for (const r of [...this.committed.rounds.values()].filter((x) => x.status === 'closing')) {
      await this.autocommit(`round:${r.id}`, () => {
        const current = this.committed.rounds.get(r.id)!;
        if (current.status === 'closing') this.commitRow('rounds', r.id, { closeClaimExpiresAt: this.dbNow() });
        return true;
      });
    }
  }

  dueRounds(now: Date): Promise<string[]> {
    const at = this.dbNow().getTime();
    const participants = [...this.committed.participants.values()];
    const due = [...this.committed.rounds.values()]
      .filter(
        (r) =>
          (r.status === 'open' &&
            (r.deadlineAt.getTime() <= now.getTime() ||
              !participants.some((p) => p.roundId === r.id && p.status === 'waiting'))) ||
          (r.status === 'closing' && r.closeClaimExpiresAt !== null && r.closeClaimExpiresAt.getTime() <= at),
      )
      .sort((a, b) => a.openedAt.getTime() - b.openedAt.getTime());
    return Promise.resolve(due.map((r) => r.id));
  }

  renewClaim(roundId: string, token: string): Promise<boolean> {
    return this.autocommit(`round:${roundId}`, () => {
      const r = this.committed.rounds.get(roundId);
      if (!r || r.status !== 'closing' || r.closeClaim !== token) return false;
      this.commitRow('rounds', roundId, { closeClaimExpiresAt: this.leaseEnd() });
      return true;
    });
  }

  round(roundId: string): Promise<RoundEntity> {
    return Promise.resolve(this.required(this.committed.rounds, roundId));
  }

  study(studyId: string): Promise<StudyEntity> {
    return Promise.resolve(this.required(this.committed.studies, studyId));
  }

  participantsOf(roundId: string): Promise<RoundParticipantEntity[]> {
    return Promise.resolve(this.participantRows(this.committed, roundId));
  }

  closedRound(studyId: string, number: number): Promise<RoundEntity | null> {
    const found = [...this.committed.rounds.values()].find(
      (r) => r.studyId === studyId && r.number === number && r.status === 'closed',
    );
    return Promise.resolve(found ? copyOf(found) : null);
  }

  studyOpenTo(silo: SiloIdentity, studyId: string): Promise<StudyEntity> {
    return studyOpenTo(this.openRoundReads(), silo, studyId);
  }

  openRoundFor(
    silo: SiloIdentity,
    studyId: string,
    roundNumber: number,
  ): Promise<{ study: StudyEntity; round: RoundEntity }> {
    return openRoundFor(this.openRoundReads(), silo, studyId, roundNumber);
  }

  acceptedUploads(siloId: string, studyId: string, roundNumber: number): Promise<AcceptedUpload[]> {
    const rows = [...this.committed.participants.values()].flatMap((p) => {
      const r = this.committed.rounds.get(p.roundId)!;
      return r.studyId === studyId && r.number === roundNumber && p.siloId === siloId && p.status === 'uploaded'
        ? p.updateHash
          ? [{ round: r.number, attempt: r.attempt, updateHash: p.updateHash, reportedAt: p.reportedAt ?? new Date(0) }]
          : []
        : [];
    });
    return Promise.resolve(rows.sort((a, b) => a.attempt - b.attempt));
  }

  /** Given state, committed outside any transaction. */
  seedStudy(fields: Partial<StudyEntity> & Pick<StudyEntity, 'plan' | 'participants'>): StudyEntity {
    const study = Object.assign(new StudyEntity(), {
      id: randomUUID(),
      name: 'study',
      status: 'running',
      planVersion: 1,
      planHash: 'ab'.repeat(32),
      currentModelHash: null,
      optimizerStateHash: null,
      controlVariateHash: null,
      endReason: null,
      endedAt: null,
      pausedAt: null,
      pauseReason: null,
      pausedNextRound: null,
      archivedAt: null,
      ...fields,
    });
    this.committed.studies.set(study.id, study);
    return copyOf(study);
  }

  seedRound(fields: Partial<RoundEntity> & Pick<RoundEntity, 'studyId'>, silos: string[] = []): RoundEntity {
    const round = this.newRound({
      number: 1,
      attempt: 1,
      kind: 'train',
      status: 'open',
      modelHash: 'cd'.repeat(32),
      openedAt: new Date(),
      deadlineAt: new Date(Date.now() + 600_000),
      ...fields,
    });
    this.committed.rounds.set(round.id, round);
    for (const siloId of silos) {
      this.committed.participants.set(participantKey(round.id, siloId), this.newParticipant(round.id, siloId));
    }
    return copyOf(round);
  }

  /** Changes a committed participant's row outside any transaction (a given upload, say). */
  seedParticipant(roundId: string, siloId: string, change: Partial<RoundParticipantEntity>): void {
    const key = participantKey(roundId, siloId);
    this.committed.participants.set(key, Object.assign(copyOf(this.committed.participants.get(key)!), change));
  }

  /** The committed rows, for a test's assertions. */
  get rounds(): RoundEntity[] {
    return [...this.committed.rounds.values()].sort((a, b) => a.number - b.number || a.attempt - b.attempt).map(copyOf);
  }

  get participants(): RoundParticipantEntity[] {
    return [...this.committed.participants.values()].map(copyOf);
  }

  get studies(): StudyEntity[] {
    return [...this.committed.studies.values()].map(copyOf);
  }

  private unitOfWork(id: number, handle: FakeHandle, writes: Tables, releases: (() => void)[]): RoundsUnitOfWork {
    const held = new Set<string>();
    // now() is the transaction's start, as in PostgreSQL.
    const now = this.dbNow();
    const view = (): Tables => this.merged(writes);
    const lock = async (key: string) => {
      if (held.has(key)) return;
      releases.push(await this.locks.acquire(key));
      held.add(key);
      this.lockLog.push({ transaction: id, key });
    };
    /** An UPDATE: locks each candidate row, then re-checks `where` on the row as it is now, and changes it. */
    const update = async <K extends TableName>(
      table: K,
      lockKey: (key: string) => string,
      where: (row: Tables[K] extends Map<string, infer R> ? R : never) => boolean,
      change: (row: Tables[K] extends Map<string, infer R> ? R : never) => object,
    ): Promise<number> => {
      type Row = Tables[K] extends Map<string, infer R> ? R : never;
      const candidates = [...(view()[table] as Map<string, Row>).entries()].filter(([, r]) => where(r));
      let affected = 0;
      for (const [key] of candidates) {
        await lock(lockKey(key));
        const current = (view()[table] as Map<string, Row>).get(key);
        if (!current || !where(current)) continue;
        (writes[table] as Map<string, Row>).set(key, Object.assign(copyOf(current as object), change(current)) as Row);
        affected += 1;
      }
      return affected;
    };
    const roundLock = (key: string) => `round:${key}`;
    const participantLock = (key: string) => `participant:${key}`;
    const studyLock = (key: string) => `study:${key}`;
    const leaseEnd = () => new Date(now.getTime() + CLOSE_LEASE_SECONDS * 1000);
    const released = { closeClaim: null, closeClaimExpiresAt: null };
    return {
      open: handle as unknown as OpenTransaction,
      savepoint: async <T>(work: () => Promise<T>): Promise<SavepointOutcome<T>> => {
        // Rolling back restores the writes as they were; locks stay held until the transaction ends (PostgreSQL
        // releases those taken after the savepoint: holding them longer only serialises more).
        const saved = {
          rounds: new Map(writes.rounds),
          participants: new Map(writes.participants),
          studies: new Map(writes.studies),
        };
        const savepoint = ++this.savepoints;
        const outer = this.context.getStore() ?? { transaction: id, savepoints: [] };
        try {
          const value = await this.context.run({ transaction: id, savepoints: [...outer.savepoints, savepoint] }, work);
          return { ok: true, value };
        } catch (error) {
          this.rolledBackSavepoints.add(savepoint);
          for (const table of ['rounds', 'participants', 'studies'] as const) {
            (writes[table] as Map<string, object>).clear();
            for (const [key, row] of saved[table] as Map<string, object>)
              (writes[table] as Map<string, object>).set(key, row);
          }
          return { ok: false, error };
        }
      },
      lockRound: async (roundId) => {
        await lock(roundLock(roundId));
        return this.required(view().rounds, roundId);
      },
      lockStudy: async (studyId) => {
        await lock(studyLock(studyId));
        return this.required(view().studies, studyId);
      },
      participants: (roundId) => Promise.resolve(this.participantRows(view(), roundId)),
      participant: (roundId, siloId) => {
        const p = view().participants.get(participantKey(roundId, siloId));
        return Promise.resolve(p ? copyOf(p) : null);
      },
      claimForClose: async (roundId, token) => {
        const claim = { status: 'closing' as const, closeClaim: token, closeClaimExpiresAt: leaseEnd() };
        await update(
          'rounds',
          roundLock,
          (r) => r.id === roundId,
          () => claim,
        );
      },
      takeOverLapsedClaim: async (roundId, token) =>
        (await update(
          'rounds',
          roundLock,
          (r) =>
            r.id === roundId &&
            r.status === 'closing' &&
            r.closeClaimExpiresAt !== null &&
            r.closeClaimExpiresAt.getTime() <= now.getTime(),
          () => ({ closeClaim: token, closeClaimExpiresAt: leaseEnd() }),
        )) > 0,
      reopen: async (roundId) => {
        await update(
          'rounds',
          roundLock,
          (r) => r.id === roundId,
          () => ({ status: 'open', ...released }),
        );
      },
      endAttempt: async (roundId, end) => {
        await update(
          'rounds',
          roundLock,
          (r) => r.id === roundId,
          () => end,
        );
      },
      markLate: async (roundId, siloIds) => {
        const late = (p: RoundParticipantEntity) =>
          p.roundId === roundId && siloIds.includes(p.siloId) && p.status === 'waiting';
        await update('participants', participantLock, late, () => ({ status: 'late' }));
      },
      setAside: async (roundId, siloId, failure) => {
        const mine = (p: RoundParticipantEntity) => p.roundId === roundId && p.siloId === siloId;
        await update('participants', participantLock, mine, () => ({ status: 'failed', failure }));
      },
      recordFailure: async (roundId, siloId, failure, at) => {
        const waiting = (p: RoundParticipantEntity) =>
          p.roundId === roundId && p.siloId === siloId && p.status === 'waiting';
        await update('participants', participantLock, waiting, () => ({ status: 'failed', failure, reportedAt: at }));
      },
      recordEvaluation: async (roundId, siloId, fields) => {
        const mine = (p: RoundParticipantEntity) => p.roundId === roundId && p.siloId === siloId;
        await update('participants', participantLock, mine, () => ({ status: 'evaluated', ...fields }));
      },
      recordUpload: async (roundId, siloId, fields) => {
        const mine = (p: RoundParticipantEntity) => p.roundId === roundId && p.siloId === siloId;
        await update('participants', participantLock, mine, () => ({ status: 'uploaded', ...fields }));
      },
      updateStudy: async (studyId, changes) => {
        await update(
          'studies',
          studyLock,
          (s) => s.id === studyId,
          () => changes,
        );
      },
      failStudy: async (studyId, roundId, reason) => {
        const live = (r: RoundEntity) => r.id === roundId && (r.status === 'open' || r.status === 'closing');
        const failed = { status: 'failed', closedAt: new Date(), closeReason: reason, ...released };
        await update('rounds', roundLock, live, () => failed);
        const ended = { status: 'failed', endReason: reason, endedAt: new Date() };
        await update(
          'studies',
          studyLock,
          (s) => s.id === studyId,
          () => ended,
        );
      },
      insertRound: (fields) => {
        const round = this.newRound(fields);
        writes.rounds.set(round.id, round);
        this.checkUnique(view());
        return Promise.resolve(copyOf(round));
      },
      addParticipants: (roundId, siloIds) => {
        for (const siloId of siloIds) {
          const key = participantKey(roundId, siloId);
          if (view().participants.has(key)) throw new UniqueViolation('round_participants_pkey');
          writes.participants.set(key, this.newParticipant(roundId, siloId));
        }
        return Promise.resolve();
      },
      abandonOpenRounds: async (studyId) => {
        const live = (r: RoundEntity) => r.studyId === studyId && (r.status === 'open' || r.status === 'closing');
        const abandoned = { status: 'abandoned', closedAt: new Date(), closeReason: 'study stopped', ...released };
        await update('rounds', roundLock, live, () => abandoned);
      },
    };
  }

  /** One statement outside any transaction: it waits for the row's lock, runs, and commits at once. */
  private async autocommit<T>(key: string, statement: () => T): Promise<T> {
    const release = await this.locks.acquire(key);
    try {
      return statement();
    } finally {
      release();
    }
  }

  private commitRow<K extends TableName>(table: K, key: string, change: object): void {
    const rows = this.committed[table] as Map<string, object>;
    rows.set(key, Object.assign(copyOf(rows.get(key)!), change));
  }

  private leaseEnd(): Date {
    return new Date(this.dbNow().getTime() + CLOSE_LEASE_SECONDS * 1000);
  }

  private openRoundReads(): OpenRoundReads {
    return {
      findStudy: (studyId) => {
        const s = this.committed.studies.get(studyId);
        return Promise.resolve(s ? copyOf(s) : null);
      },
      liveRound: (studyId) => {
        const r = [...this.committed.rounds.values()].find(
          (x) => x.studyId === studyId && (x.status === 'open' || x.status === 'closing'),
        );
        return Promise.resolve(r ? copyOf(r) : null);
      },
    };
  }

  private participantRows(tables: Tables, roundId: string): RoundParticipantEntity[] {
    return [...tables.participants.values()].filter((p) => p.roundId === roundId).map(copyOf);
  }

  private required<T extends object>(rows: Map<string, T>, key: string): T {
    const row = rows.get(key);
    if (!row) throw new Error(`no row ${key}`);
    return copyOf(row);
  }

  private merged(writes: Tables): Tables {
    return {
      rounds: new Map([...this.committed.rounds, ...writes.rounds]),
      participants: new Map([...this.committed.participants, ...writes.participants]),
      studies: new Map([...this.committed.studies, ...writes.studies]),
    };
  }

  private checkUnique(tables: Tables): void {
    const seen = new Set<string>();
    for (const r of tables.rounds.values()) {
      const key = `${r.studyId}:${r.number}:${r.attempt}`;
      if (seen.has(key)) throw new UniqueViolation('rounds_study_number_attempt');
      seen.add(key);
    }
  }

  private newRound(fields: Omit<Partial<RoundEntity>, 'id'> & Pick<RoundEntity, 'studyId'>): RoundEntity {
    return Object.assign(new RoundEntity(), {
      id: randomUUID(),
      resultModelHash: null,
      closedAt: null,
      closeReason: null,
      summary: null,
      closeClaim: null,
      closeClaimExpiresAt: null,
      ...fields,
    });
  }

  private newParticipant(roundId: string, siloId: string): RoundParticipantEntity {
    return Object.assign(new RoundParticipantEntity(), {
      roundId,
      siloId,
      status: 'waiting',
      updateHash: null,
      updateBytes: null,
      numExamples: null,
      l2Norm: null,
      trainLoss: null,
      evaluation: null,
      personalization: null,
      privacy: null,
      failure: null,
      reportedAt: null,
    });
  }
}
