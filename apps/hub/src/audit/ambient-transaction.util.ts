import { AsyncLocalStorage } from 'node:async_hooks';
import type { DataSource, EntityManager } from 'typeorm';

const INSTALLED = Symbol('tessera.ambientTransaction');

/**
 * Knows, for the code currently running, which `DataSource.transaction(...)` callback (if any) it runs inside.
 *
 * Why: the embedded database has a pool of ONE connection (ADR 0002). A module that calls `AuditTrail.record()` from
 * inside its own transaction holds that connection; an audit write that waited for a connection of its own would
 * wait forever. So a record written inside a hub transaction joins it instead, on the same connection (on both
 * databases, so behaviour does not depend on the database kind): the record commits, or rolls back, with the state
 * change it describes.
 */
export class AmbientTransactions {
  private readonly storage = new AsyncLocalStorage<EntityManager>();

  /** Wraps `dataSource.manager.transaction` of this DataSource instance (once) so callbacks run in context. */
  install(dataSource: DataSource): void {
    const manager = dataSource.manager as EntityManager & { [INSTALLED]?: true };
    if (manager[INSTALLED]) return;
    const original = manager.transaction.bind(manager) as (...args: unknown[]) => Promise<unknown>;
    const storage = this.storage;
    const wrapped = (...args: unknown[]): Promise<unknown> => {
      const index = args.findIndex((a) => typeof a === 'function');
      if (index < 0) return original(...args);
      const callback = args[index] as (em: EntityManager) => Promise<unknown>;
      const inContext = [...args];
      inContext[index] = (em: EntityManager) => storage.run(em, () => callback(em));
      return original(...inContext);
    };
    Object.defineProperty(manager, 'transaction', { value: wrapped, configurable: true });
    Object.defineProperty(manager, INSTALLED, { value: true });
  }

  /** The manager of the enclosing transaction, if it is still open. */
  current(): EntityManager | undefined {
    const em = this.storage.getStore();
    const runner = em?.queryRunner;
    if (!em || !runner || runner.isReleased || !runner.isTransactionActive) return undefined;
    return em;
  }
}
