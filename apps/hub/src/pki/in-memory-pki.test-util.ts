import { AsyncLocalStorage } from 'node:async_hooks';
import { RowLocks, UniqueViolation } from '../silos/in-memory-silos.test-util';
import { HubPkiEntity } from './hub-pki.entity';
import type { PkiRepository, PkiUnitOfWork, StoredKeyPair } from './pki.repository';

const CA_ROW = 'silo-ca';
const SERVER_ROW = 'server';

const copyOf = (row: HubPkiEntity): HubPkiEntity => Object.assign(new HubPkiEntity(), row);

/**
 * `hub_pki` in memory: its primary key (one row per name: a second CA insert is refused, also one that raced an
 * insert committed after it ran), the PKI's advisory lock held
 * until the transaction that took it ends (FIFO, as pg_advisory_xact_lock queues), READ COMMITTED reads (a statement
 * sees what committed before it plus its own transaction's writes) and commits only when the work resolves.
 * `openTransaction()` says which transaction the running code is in (as AmbientTransactions does for the audit
 * trail), `didCommit` whether it committed.
 */
export class InMemoryPki implements Pick<PkiRepository, 'stored' | 'underPkiLock'> {
  private committed = new Map<string, HubPkiEntity>();
  private readonly locks = new RowLocks();
  private readonly context = new AsyncLocalStorage<number>();
  private readonly committedIds = new Set<number>();
  private transactions = 0;
  /** Every write, in order: `insert:<name>`, `save:<name>`, `delete:<name>`. */
  readonly writeLog: string[] = [];
  /** Transactions that took the PKI lock, in the order they got it. */
  readonly lockLog: number[] = [];

  openTransaction(): number | undefined {
    return this.context.getStore();
  }

  didCommit(transaction: number): boolean {
    return this.committedIds.has(transaction);
  }

  stored(): Promise<HubPkiEntity[]> {
    return Promise.resolve([...this.committed.values()].map(copyOf));
  }

  /** The committed row of that name, for assertions. */
  row(name: 'silo-ca' | 'server'): HubPkiEntity | undefined {
    const row = this.committed.get(name);
    return row ? copyOf(row) : undefined;
  }

  async underPkiLock<T>(work: (tx: PkiUnitOfWork) => Promise<T>): Promise<T> {
    const id = ++this.transactions;
    const writes = new Map<string, HubPkiEntity | null>();
    const inserted = new Set<string>();
    const release = await this.locks.acquire('pki');
    this.lockLog.push(id);
    try {
      const result = await this.context.run(id, () => work(this.unitOfWork(writes, inserted)));
      // An insert that raced another transaction's (uncommitted when it ran) fails when that one committed first.
      for (const name of inserted) if (this.committed.has(name)) throw new UniqueViolation('hub_pki_pkey');
      const next = new Map(this.committed);
      for (const [name, row] of writes) {
        if (row) next.set(name, row);
        else next.delete(name);
      }
      this.committed = next;
      this.committedIds.add(id);
      return result;
    } finally {
      release();
    }
  }

  private unitOfWork(writes: Map<string, HubPkiEntity | null>, inserted: Set<string>): PkiUnitOfWork {
    const read = (name: string): HubPkiEntity | null => {
      const row = writes.has(name) ? writes.get(name)! : (this.committed.get(name) ?? null);
      return row ? copyOf(row) : null;
    };
    const put = (name: string, pair: StoredKeyPair, createdAt?: Date) =>
      writes.set(name, Object.assign(new HubPkiEntity(), { name, ...pair, createdAt: createdAt ?? new Date() }));
    return {
      ca: () => Promise.resolve(read(CA_ROW)),
      insertCa: (ca) => {
        this.writeLog.push(`insert:${CA_ROW}`);
        if (read(CA_ROW)) return Promise.reject(new UniqueViolation('hub_pki_pkey'));
        put(CA_ROW, ca);
        inserted.add(CA_ROW);
        return Promise.resolve();
      },
      replaceCa: (ca) => {
        this.writeLog.push(`save:${CA_ROW}`);
        put(CA_ROW, ca, read(CA_ROW)?.createdAt);
        return Promise.resolve();
      },
      server: () => Promise.resolve(read(SERVER_ROW)),
      saveServer: (server) => {
        this.writeLog.push(`save:${SERVER_ROW}`);
        put(SERVER_ROW, server, read(SERVER_ROW)?.createdAt);
        return Promise.resolve();
      },
      dropServer: () => {
        this.writeLog.push(`delete:${SERVER_ROW}`);
        writes.set(SERVER_ROW, null);
        return Promise.resolve();
      },
    };
  }
}
