import { AsyncLocalStorage } from 'node:async_hooks';
import { Client } from 'pg';

/** What a write changed: some tables, or anything at all (a statement the watch cannot attribute). */
export type Written = ReadonlySet<string> | 'all';

/** The tables a read depends on, filled in as its statements are sent; `all` once it read something untracked. */
export interface ReadSet {
  readonly tables: Set<string>;
  all: boolean;
}

/**
 * Versions of the data this process can read, per table: a counter moved after every COMMIT of a transaction that
 * wrote, and at every write outside a transaction, with the version at which each table last changed. A read that
 * started at version v and read tables T sees the same committed state as a read made now while no table of T
 * changed after v, so its result may be reused (ReadCache).
 *
 * The tables a statement touches are the known tables whose names appear in its text as identifiers (an
 * over-approximation: a column or an alias with a table's name only costs a cache miss). A write that names no known
 * table, a DELETE or TRUNCATE (foreign keys may cascade to other tables), DDL and anything unrecognised change
 * `all`. Until the known tables are loaded (`know`), every write changes `all`.
 *
 * Exact only when this process is the database's one writer: the embedded database, which one hub holds under an
 * exclusive lock (ADR 0002). With a server database other hubs and operators write too; nothing watches them, and
 * the hub does not use it there (ReadCache is off).
 */
export class DataGeneration {
  private current = 0;
  private lastAll = 0;
  private readonly lastWrite = new Map<string, number>();
  private known: ReadonlySet<string> | null = null;
  /** Views and other relations whose contents come from other tables: reading one depends on everything. */
  private derived: ReadonlySet<string> = new Set();
  private readonly parsed = new Map<string, readonly string[]>();
  private readonly reads = new AsyncLocalStorage<ReadSet>();
  /** Statements the watched connections sent, by whether they may have changed data (metrics). */
  readonly statements = { read: 0, write: 0 };

  /** The current version: any write moves it. */
  get value(): number {
    return this.current;
  }

  /**
   * The relations of the database: `tables` (and sequences) change only through statements that name them,
   * `derived` (views) show what other tables hold.
   */
  know(tables: Iterable<string>, derived: Iterable<string> = []): void {
    this.known = new Set([...tables].map((t) => t.toLowerCase()));
    this.derived = new Set([...derived].map((t) => t.toLowerCase()));
    this.parsed.clear();
    this.bump('all');
  }

  /** Called by the watched connections; also by anything else that changes what reads return. */
  bump(written: Written = 'all'): void {
    this.current += 1;
    if (written === 'all') {
      this.lastAll = this.current;
      return;
    }
    for (const table of written) this.lastWrite.set(table, this.current);
  }

  /** Whether any table of `read` (or anything, for `all`) changed after `version`. */
  changedSince(version: number, read: ReadSet): boolean {
    if (this.lastAll > version) return true;
    if (read.all) return this.current > version;
    for (const table of read.tables) if ((this.lastWrite.get(table) ?? 0) > version) return true;
    return false;
  }

  /** Runs `compute` recording in `read` the tables its statements name (ReadCache). */
  recording<T>(read: ReadSet, compute: () => Promise<T>): Promise<T> {
    return this.reads.run(read, compute);
  }

  /** The known tables named in `sql`; null when the tables are not known yet. */
  tablesIn(sql: string): readonly string[] | null {
    if (!this.known) return null;
    let found = this.parsed.get(sql);
    if (!found) {
      const names = new Set<string>();
      for (const token of sql.toLowerCase().match(IDENTIFIER) ?? []) {
        if (this.known.has(token) || this.derived.has(token)) names.add(token);
      }
      found = [...names];
      // Statements are a few hundred distinct texts (parameters travel apart); bound it for ad-hoc ones anyway.
      if (this.parsed.size >= 4_096) this.parsed.clear();
      this.parsed.set(sql, found);
    }
    return found;
  }

  /** Adds what a read statement names to the read being recorded, if any. */
  noteRead(sql: string): void {
    const read = this.reads.getStore();
    if (!read || read.all) return;
    const tables = this.tablesIn(sql);
    if (!tables) {
      read.all = true;
      return;
    }
    for (const table of tables) {
      if (this.derived.has(table)) read.all = true;
      else read.tables.add(table);
    }
  }
}

const IDENTIFIER = /[a-z_][a-z0-9_$]*/g;

/**
 * Statements that only read: a plain SELECT without row locks or sequence calls (an advisory lock changes no data).
 */
const READ_ONLY = /^\s*select\b/i;
const WRITES_ANYWAY = /\bfor\s+(update|share|no\s+key\s+update|key\s+share)\b|\bnextval\s*\(|\bsetval\s*\(/i;
/** Statements that change rows of the tables they name and nothing else. */
const ROW_WRITE = /^\s*(insert|update)\b/i;
/** Transaction control that changes no data. */
const NO_DATA = /^\s*(savepoint|release(\s+savepoint)?|rollback\s+to|set\s|show\s)/i;
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
 * Classifies each statement one connection sends and moves `generation` where data changes. Conservative: any
 * statement not known to be a read counts as a write, of `all` unless it is an INSERT or UPDATE (or a locking or
 * sequence-calling SELECT) naming known tables (a spurious bump only costs a cache miss; a missed one would serve
 * stale data). Inside a transaction, writes become visible at COMMIT, so the bump waits for it: a reader served from
 * the cache while a transaction is open sees what every other reader would, the last committed state. Reads are
 * reported to the read being recorded (`DataGeneration.recording`), if any.
 */
export class StatementWatch {
  private inTransaction = false;
  private written: Set<string> | 'all' | null = null;

  constructor(private readonly generation: DataGeneration) {}

  observe(sql: string): void {
    if (BEGIN.test(sql)) {
      this.inTransaction = true;
      this.written = null;
      return;
    }
    if (this.inTransaction) {
      if (COMMIT.test(sql)) {
        if (this.written) this.generation.bump(this.written);
        this.inTransaction = false;
        this.written = null;
        return;
      }
      if (ROLLBACK.test(sql)) {
        this.inTransaction = false; // ROLLBACK TO SAVEPOINT does not match: the transaction goes on
        this.written = null;
        return;
      }
    }
    if (NO_DATA.test(sql)) return;
    if (READ_ONLY.test(sql) && !WRITES_ANYWAY.test(sql)) {
      this.generation.statements.read += 1;
      this.generation.noteRead(sql);
      return;
    }
    this.generation.statements.write += 1;
    const written = this.writtenBy(sql);
    if (!this.inTransaction) {
      this.generation.bump(written);
      return;
    }
    if (written === 'all' || this.written === 'all') this.written = 'all';
    else this.written = new Set([...(this.written ?? []), ...written]);
  }

  private writtenBy(sql: string): Written {
    if (!ROW_WRITE.test(sql) && !READ_ONLY.test(sql)) return 'all';
    const tables = this.generation.tablesIn(sql);
    if (!tables || tables.length === 0) return 'all';
    return new Set(tables);
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
  };
}
