import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { PrivacySpend } from '@tessera/protocol';
import type { SiloEntity } from '../silos/silo.entity';
import { RowLocks, UniqueViolation } from '../silos/in-memory-silos.test-util';
import type { StudyEntity } from '../study-state/study.entity';
import { PrivacyLedgerEntity } from './privacy-ledger.entity';
import type {
  ChargeKey,
  LedgerTotals,
  LegacyFigure,
  NewCharge,
  OpenTransaction,
  PrivacyRepository,
} from './privacy.repository';

/** Everything the privacy services read and write through. */
export type PrivacyPort = Pick<
  PrivacyRepository,
  | 'manager'
  | 'chargedSilos'
  | 'insertCharge'
  | 'issuedCharge'
  | 'attachReport'
  | 'totals'
  | 'entries'
  | 'findSilo'
  | 'studiesOfSilo'
  | 'legacyFigure'
>;

/** The handle a fake transaction hands its work, where the service expects the EntityManager of an open one. */
interface FakeTransaction {
  readonly id: number;
  /** Rows inserted or updated in this transaction, by id (copies: the committed rows stay as they were). */
  readonly writes: Map<string, PrivacyLedgerEntity>;
  readonly releases: (() => void)[];
  /** Resolves when the transaction has committed or rolled back. */
  readonly ended: Promise<void>;
}

const AUTOCOMMIT = 0;

const copyOf = (row: PrivacyLedgerEntity): PrivacyLedgerEntity => Object.assign(new PrivacyLedgerEntity(), row);

/**
 * `privacy_ledger` in memory, with the real table's unique indexes (`privacy_ledger_once`: study, silo, round,
 * attempt; `privacy_ledger_charge_once`: study, silo, round and kind of the charges made on issue). As on PostgreSQL,
 * an insert that collides with a row another transaction has not committed yet waits for that transaction and fails
 * if it commits; an update locks its row until the transaction ends; reads are READ COMMITTED (what committed before
 * the statement plus the transaction's own writes); a transaction commits only when its work resolves. The ledger
 * opens no transaction itself: `inTransaction` plays the caller's (the round engine's), `lock` the caller's row lock
 * (the round's or the study's FOR UPDATE), and `openTransaction`/`didCommit` let a spec keep an audit record only if
 * the transaction it joined committed, as AmbientTransactions does.
 */
export class InMemoryPrivacy implements PrivacyPort {
  private committed = new Map<string, PrivacyLedgerEntity>();
  private readonly open = new Map<number, FakeTransaction>();
  private readonly locks = new RowLocks();
  private readonly context = new AsyncLocalStorage<number>();
  private readonly committedIds = new Set<number>();
  private transactions = 0;
  private lastCreated = 0;
  private readonly autocommit: FakeTransaction = {
    id: AUTOCOMMIT,
    writes: new Map(),
    releases: [],
    ended: Promise.resolve(),
  };
  readonly silos = new Map<string, SiloEntity>();
  readonly studies = new Map<string, StudyEntity>();

  openTransaction(): number | undefined {
    return this.context.getStore();
  }

  didCommit(transaction: number): boolean {
    return this.committedIds.has(transaction);
  }

  async inTransaction<T>(work: (tx: OpenTransaction) => Promise<T>): Promise<T> {
    const id = ++this.transactions;
    let end!: () => void;
    const ended = new Promise<void>((resolve) => (end = resolve));
    const tx: FakeTransaction = { id, writes: new Map(), releases: [], ended };
    this.open.set(id, tx);
    try {
      const result = await this.context.run(id, () => work(tx as unknown as OpenTransaction));
      for (const [rowId, row] of tx.writes) this.committed.set(rowId, row);
      this.committedIds.add(id);
      return result;
    } finally {
      this.open.delete(id);
      for (const release of tx.releases) release();
      end();
    }
  }

  /** The caller's row lock (SELECT … FOR UPDATE), held until its transaction ends. */
  async lock(tx: OpenTransaction, key: string): Promise<void> {
    const t = this.handle(tx);
    t.releases.push(await this.locks.acquire(key));
  }

  manager(): OpenTransaction {
    return this.autocommit as unknown as OpenTransaction;
  }

  chargedSilos(tx: OpenTransaction, key: ChargeKey): Promise<string[]> {
    return Promise.resolve(this.issued(this.visible(this.handle(tx)), key).map((r) => r.siloId));
  }

  async insertCharge(tx: OpenTransaction, charge: NewCharge): Promise<void> {
    const t = this.handle(tx);
    for (;;) {
      const clash = (rows: Iterable<PrivacyLedgerEntity>) => [...rows].map((r) => collision(r, charge)).find(Boolean);
      const settled = clash(this.visible(t));
      if (settled) throw new UniqueViolation(settled);
      const pending = [...this.open.values()].find((o) => o !== t && clash(o.writes.values()));
      if (!pending) break;
      await pending.ended;
    }
    const row = Object.assign(new PrivacyLedgerEntity(), charge, { id: randomUUID(), createdAt: this.now() });
    if (t.id === AUTOCOMMIT) this.committed.set(row.id, row);
    else t.writes.set(row.id, row);
  }

  issuedCharge(tx: OpenTransaction, key: ChargeKey, siloId: string): Promise<PrivacyLedgerEntity | null> {
    const row = this.issued(this.visible(this.handle(tx)), key).find((r) => r.siloId === siloId);
    return Promise.resolve(row ? copyOf(row) : null);
  }

  async attachReport(
    tx: OpenTransaction,
    chargeId: string,
    report: { reported: PrivacySpend; agrees: boolean; reportedAt: Date },
  ): Promise<void> {
    const t = this.handle(tx);
    if (t.id !== AUTOCOMMIT) t.releases.push(await this.locks.acquire(`ledger:${chargeId}`));
    // After the lock: the row as the transaction that held it left it.
    const row = t.writes.get(chargeId) ?? this.committed.get(chargeId);
    if (!row) return;
    const updated = Object.assign(copyOf(row), structuredClone(report));
    if (t.id === AUTOCOMMIT) this.committed.set(chargeId, updated);
    else t.writes.set(chargeId, updated);
  }

  totals(tx: OpenTransaction, studyId: string): Promise<LedgerTotals[]> {
    const bySilo = new Map<string, PrivacyLedgerEntity[]>();
    for (const r of this.visible(this.handle(tx))) {
      if (r.studyId !== studyId) continue;
      bySilo.set(r.siloId, [...(bySilo.get(r.siloId) ?? []), r]);
    }
    return Promise.resolve(
      [...bySilo].map(([siloId, rows]) => {
        const reported = rows.flatMap((r) => (r.reported ? [r.reported] : []));
        const max = (values: number[]) => (values.length === 0 ? null : Math.max(...values));
        const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
        return {
          siloId,
          chargedTraining: sum(rows.map((r) => r.trainingAdded)),
          chargedEvaluations: sum(rows.map((r) => r.evaluationAdded)),
          chargedPersonalizations: sum(rows.map((r) => r.personalizationAdded)),
          reportedPersonalizations: max(rows.map((r) => r.reported?.personalizations ?? 0)),
          reportedTraining: max(reported.map((r) => r.trainingRounds)),
          reportedEvaluations: max(reported.map((r) => r.evaluationReleases)),
          reportedEpsilon: max(reported.map((r) => r.epsilonCumulative)),
          disagreements: rows.filter((r) => r.agrees === false).length,
        };
      }),
    );
  }

  entries(studyId: string): Promise<PrivacyLedgerEntity[]> {
    const rows = [...this.committed.values()].filter((r) => r.studyId === studyId);
    rows.sort(
      (a, b) =>
        a.createdAt.getTime() - b.createdAt.getTime() ||
        a.round - b.round ||
        b.kind.localeCompare(a.kind) ||
        a.siloId.localeCompare(b.siloId),
    );
    return Promise.resolve(rows.map(copyOf));
  }

  findSilo(siloId: string): Promise<SiloEntity | null> {
    return Promise.resolve(this.silos.get(siloId) ?? null);
  }

  studiesOfSilo(siloId: string): Promise<StudyEntity[]> {
    const charged = new Set([...this.committed.values()].filter((r) => r.siloId === siloId).map((r) => r.studyId));
    const rows = [...this.studies.values()].filter(
      (s) => s.status !== 'draft' && (planSilos(s).includes(siloId) || charged.has(s.id)),
    );
    return Promise.resolve(rows.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime()));
  }

  legacyFigure(studyId: string, siloId: string): Promise<LegacyFigure | undefined> {
    const rows = [...this.committed.values()].filter((r) => r.studyId === studyId && r.siloId === siloId);
    const epsilons = rows.map((r) => Math.max(r.epsilonCumulative, r.reported?.epsilonCumulative ?? 0));
    return Promise.resolve({
      epsilon: epsilons.length === 0 ? null : Math.max(...epsilons),
      disagreements: rows.filter((r) => r.agrees === false).length,
    });
  }

  private handle(tx: OpenTransaction): FakeTransaction {
    const t = tx as unknown as FakeTransaction;
    if (t.id !== AUTOCOMMIT && !this.open.has(t.id)) throw new Error(`transaction ${t.id} has ended`);
    return t;
  }

  /** READ COMMITTED: the committed rows, with this transaction's own writes over them. */
  private visible(t: FakeTransaction): PrivacyLedgerEntity[] {
    return [...new Map([...this.committed, ...t.writes]).values()];
  }

  private issued(rows: PrivacyLedgerEntity[], key: ChargeKey): PrivacyLedgerEntity[] {
    return rows.filter(
      (r) => r.studyId === key.studyId && r.round === key.round && r.kind === key.kind && r.chargedOn === 'issued',
    );
  }

  /** A strictly increasing clock, so the ledger's order is well defined within one millisecond. */
  private now(): Date {
    this.lastCreated = Math.max(Date.now(), this.lastCreated + 1);
    return new Date(this.lastCreated);
  }
}

/** The unique index a new row would violate next to an existing one, if any. */
function collision(existing: PrivacyLedgerEntity, row: NewCharge): string | undefined {
  if (existing.studyId !== row.studyId || existing.siloId !== row.siloId || existing.round !== row.round) {
    return undefined;
  }
  if (existing.attempt === row.attempt) return 'privacy_ledger_once';
  if (existing.chargedOn === 'issued' && row.chargedOn === 'issued' && existing.kind === row.kind) {
    return 'privacy_ledger_charge_once';
  }
  return undefined;
}

function planSilos(study: StudyEntity): string[] {
  const silos = (study.plan as { silos?: unknown }).silos;
  return Array.isArray(silos) ? silos.filter((s): s is string => typeof s === 'string') : [];
}
