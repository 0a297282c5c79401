import type { DataSource, EntityManager } from 'typeorm';

const INSTALLED = Symbol('tessera.transactionGate');

/**
 * Lets transactions ask for a database of ONE connection one at a time, so a read never queues behind more than one.
 *
 * Why: the embedded database serves one session, so the hub's pool holds one connection (ADR 0002), and node-postgres
 * hands a released connection to its waiters first come, first served. When the uploads of a round end together,
 * their acceptance transactions (several statements each, one event-loop turn per statement) all wait for that
 * connection, and a console read that arrives just after them waits for every one: with 32 silos that was most of a
 * console read's 95th percentile (docs/benchmarks.md §11). Behind the gate, only one transaction at a time waits for
 * (or holds) the connection; the others wait here, where reads do not. A read then waits for at most the transaction
 * holding the connection and the one next in line, and transactions still run in the order they arrived.
 *
 * Installed on the embedded database only: a server database's pool has several connections, and there a gate would
 * only serialise writes that can run side by side. Like the pool of one it stands for, it forbids opening a
 * transaction from inside another one (that deadlocks on a pool of one anyway; AmbientTransactions lets audit
 * records join the enclosing transaction instead).
 */
export class TransactionGate {
  private tail: Promise<void> = Promise.resolve();
  private queued = 0;

  /** Transactions waiting for their turn or running (for metrics and tests). */
  get waiting(): number {
    return this.queued;
  }

  /** Runs `work` after every transaction that entered the gate before it has ended, successfully or not. */
  run<T>(work: () => Promise<T>): Promise<T> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((resolve) => (release = resolve));
    this.queued += 1;
    const done = () => {
      this.queued -= 1;
      release();
    };
    return previous.then(work).then(
      (value) => {
        done();
        return value;
      },
      (err: unknown) => {
        done();
        throw err;
      },
    );
  }

  /**
   * Routes every `dataSource.transaction(...)` and `manager.transaction(...)` of this DataSource through a gate (once
   * per DataSource; DataSource.transaction delegates to its manager). Returns the gate.
   */
  static install(dataSource: DataSource): TransactionGate {
    const manager = dataSource.manager as EntityManager & { [INSTALLED]?: TransactionGate };
    const existing = manager[INSTALLED];
    if (existing) return existing;
    const gate = new TransactionGate();
    const original = manager.transaction.bind(manager) as (...args: unknown[]) => Promise<unknown>;
    const gated = (...args: unknown[]): Promise<unknown> => gate.run(() => original(...args));
    Object.defineProperty(manager, 'transaction', { value: gated, configurable: true });
    Object.defineProperty(manager, INSTALLED, { value: gate });
    return gate;
  }
}
