import { Client } from 'pg';

/**
 * A number that changes whenever data this process can read may have changed: after every COMMIT of a transaction
 * that wrote, and at every write outside a transaction. Two reads made at the same generation see the same
 * committed state, so a read's result may be reused while the generation stands (ReadCache).
 *
 * Exact only when this process is the database's one writer: the embedded database, which one hub holds under an
 * exclusive lock (ADR 0002). With a server database other hubs and operators write too; nothing watches them, and
 * the hub does not use it there (ReadCache is off).
 */
export class DataGeneration {
  private current = 0;

  get value(): number {
    return this.current;
  }

  /** Called by the watched connections; also by anything else that changes what reads return. */
  bump(): void {
    this.current += 1;
  }
}

/** Statements that only read, outside a transaction: a plain SELECT without row locks or sequence calls. */
const READ_ONLY = /^\s*select\b/i;
const WRITES_ANYWAY =
  /\bfor\s+(update|share|no\s+key\s+update|key\s+share)\b|\bnextval\s*\(|\bsetval\s*\(|\bpg_advisory/i;
const BEGIN = /^\s*(begin|start\s+transaction)\b/i;
const COMMIT = /^\s*(commit|end)\b/i;
const ROLLBACK = /^\s*rollback\s*(;?\s*)$/i;

/** The SQL text of a node-postgres query call's first argument (a string or a config object). */
function sqlOf(arg: unknown): string {
  if (typeof arg === 'string') return arg;
  if (arg && typeof arg === 'object' && typeof (arg as { text?: unknown }).text === 'string') {
    return (arg as { text: string }).text;
  }
  return '';
}

/**
 * Classifies each statement one connection sends and bumps `generation` where data changes. Conservative: any
 * statement not known to be a read counts as a write (a spurious bump only costs a cache miss; a missed one would
 * serve stale data). Inside a transaction, writes become visible at COMMIT, so the bump waits for it: a reader
 * served from the cache while a transaction is open sees what every other reader would, the last committed state.
 */
export class StatementWatch {
  private inTransaction = false;
  private wrote = false;

  constructor(private readonly generation: DataGeneration) {}

  observe(sql: string): void {
    if (BEGIN.test(sql)) {
      this.inTransaction = true;
      this.wrote = false;
      return;
    }
    if (this.inTransaction) {
      if (COMMIT.test(sql)) {
        if (this.wrote) this.generation.bump();
        this.inTransaction = false;
      } else if (ROLLBACK.test(sql)) {
        this.inTransaction = false; // ROLLBACK TO SAVEPOINT does not match: the transaction goes on
      } else if (!READ_ONLY.test(sql) || WRITES_ANYWAY.test(sql)) {
        this.wrote = true;
      }
      return;
    }
    if (!READ_ONLY.test(sql) || WRITES_ANYWAY.test(sql)) this.generation.bump();
  }
}

/**
 * A node-postgres Client class whose instances report every statement to a StatementWatch of their own (a pool
 * builds its clients from it: `new Pool({ Client })`).
 */
export function watchedClientClass(generation: DataGeneration): typeof Client {
  return class WatchedClient extends Client {
    private readonly watch = new StatementWatch(generation);

    // node-postgres's query has many overloads; every one takes the statement (or its config) first.
    override query(...args: unknown[]): never {
      this.watch.observe(sqlOf(args[0]));
      return (super.query as (...a: unknown[]) => never)(...args);
    }
  } as unknown as typeof Client;
}
