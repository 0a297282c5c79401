import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { UserRole } from '@tessera/protocol';
import { RowLocks, UniqueViolation } from '../silos/in-memory-silos.test-util';
import type { SessionEndReason } from './session-policy.util';
import type {
  ActiveSession,
  PresentedRefreshToken,
  Queryable,
  SessionRepository,
  SessionRow,
  SessionStore,
} from './session.repository';

/** Everything SessionsService reads and writes through. */
export type SessionsPort = Pick<
  SessionRepository,
  'inTransaction' | 'within' | 'active' | 'activeAmong' | 'liveCounts' | 'pruneEnded'
>;

/** A row of `users`, as far as the session statements join it. */
export interface StoredAccount {
  readonly id: string;
  readonly username: string;
  readonly role: UserRole;
  disabled: boolean;
  readonly mustChangePassword: boolean;
}

export interface StoredSession extends SessionRow {
  readonly refreshedAt: Date | null;
  readonly revokedReason: SessionEndReason | null;
}

export interface StoredRefreshToken {
  readonly tokenHash: string;
  readonly sessionId: string;
  readonly rotatedAt: Date | null;
}

interface Tables {
  sessions: Map<string, StoredSession>;
  tokens: Map<string, StoredRefreshToken>;
}

interface Transaction {
  readonly id: number;
  /** PostgreSQL's now() inside a transaction: its start, whatever it waited for since. */
  readonly startedAt: Date;
  readonly writes: Tables;
  readonly releases: (() => void)[];
  /** The token hashes it inserted (checked against the primary key again at commit). */
  readonly insertedTokens: Set<string>;
  /** The row locks it holds (taking one again does not wait). */
  readonly held: Set<string>;
}

/** The handle of a transaction another feature opened (an EntityManager in the hub); the double runs no SQL. */
class TransactionHandle implements Queryable {
  query(): Promise<unknown> {
    return Promise.reject(new Error('the in-memory session tables run no SQL'));
  }
}

/**
 * `sessions` and `session_refresh_tokens` in memory, joined with the accounts a test seeds (`users`), on a clock the
 * test moves. Keeps what the real tables and SessionRepository's statements guarantee: the primary keys (a token
 * hash once) and foreign keys, `now()` fixed at the transaction's start, READ COMMITTED reads (a statement sees what
 * committed before it plus its own transaction's writes), commits only when the work resolves, and row locks held
 * until the transaction ends: `findRefreshToken`'s on the session and the token (`FOR UPDATE OF s, t`), and every
 * UPDATE's on its rows. A statement that waited for a lock reads the newest version of the rows it locked and the
 * rest as its snapshot saw them, as PostgreSQL does (READ COMMITTED re-check). `openTransaction()` says which
 * transaction the running code is in (as AmbientTransactions does for the audit trail), `didCommit` whether it
 * committed.
 */
export class InMemorySessions implements SessionsPort {
  clock = new Date('2026-12-01T08:00:00.000Z');
  readonly accounts = new Map<string, StoredAccount>();
  /** Every row lock taken, in order: `session:<id>`. */
  readonly lockLog: string[] = [];
  private committed: Tables = { sessions: new Map(), tokens: new Map() };
  private readonly locks = new RowLocks();
  private readonly context = new AsyncLocalStorage<number>();
  private readonly handles = new WeakMap<Queryable, Transaction>();
  private readonly committedIds = new Set<number>();
  private transactions = 0;

  advance(seconds: number): void {
    this.clock = new Date(this.clock.getTime() + seconds * 1000);
  }

  seedAccount(account: Omit<StoredAccount, 'disabled'>): void {
    this.accounts.set(account.id, { ...account, disabled: false });
  }

  openTransaction(): number | undefined {
    return this.context.getStore();
  }

  didCommit(transaction: number): boolean {
    return this.committedIds.has(transaction);
  }

  /** A transaction opened by another feature (an account's change, a sign-in), handing `work` its handle. */
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.run((txn) => {
      const handle = new TransactionHandle();
      this.handles.set(handle, txn);
      return work(handle);
    });
  }

  inTransaction<T>(work: (tx: SessionStore) => Promise<T>): Promise<T> {
    return this.run((txn) => work(this.tables(txn)));
  }

  within(tx: Queryable): SessionStore {
    const txn = this.handles.get(tx);
    if (!txn) throw new Error('not an open transaction of the in-memory session tables');
    return this.tables(txn);
  }

  active(sessionId: string): Promise<ActiveSession | null> {
    const s = this.committed.sessions.get(sessionId);
    const account = s && this.accounts.get(s.userId);
    if (!s || !account || !this.live(s, this.clock)) return Promise.resolve(null);
    return Promise.resolve({
      sessionId,
      userId: account.id,
      username: account.username,
      role: account.role,
      mustChangePassword: account.mustChangePassword,
      expiresAt: s.expiresAt,
    });
  }

  activeAmong(sessionIds: readonly string[]): Promise<Set<string>> {
    const live = sessionIds.filter((id) => {
      const s = this.committed.sessions.get(id);
      return s !== undefined && this.live(s, this.clock);
    });
    return Promise.resolve(new Set(live));
  }

  liveCounts(): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    for (const s of this.committed.sessions.values()) {
      if (this.live(s, this.clock)) counts.set(s.userId, (counts.get(s.userId) ?? 0) + 1);
    }
    return Promise.resolve(counts);
  }

  pruneEnded(keepDays: number): Promise<void> {
    const before = this.clock.getTime() - keepDays * 86_400_000;
    for (const s of [...this.committed.sessions.values()]) {
      const ended = Math.min(s.revokedAt?.getTime() ?? Infinity, s.idleExpiresAt.getTime(), s.expiresAt.getTime());
      if (ended >= before) continue;
      this.committed.sessions.delete(s.id);
      for (const t of [...this.committed.tokens.values()]) {
        if (t.sessionId === s.id) this.committed.tokens.delete(t.tokenHash);
      }
    }
    return Promise.resolve();
  }

  /** The committed rows, for a test's assertions. */
  session(sessionId: string): StoredSession | undefined {
    return this.committed.sessions.get(sessionId);
  }

  token(tokenHash: string): StoredRefreshToken | undefined {
    return this.committed.tokens.get(tokenHash);
  }

  get tokenHashes(): string[] {
    return [...this.committed.tokens.keys()];
  }

  private async run<T>(work: (txn: Transaction) => Promise<T>): Promise<T> {
    const txn: Transaction = {
      id: ++this.transactions,
      startedAt: this.clock,
      writes: { sessions: new Map(), tokens: new Map() },
      releases: [],
      insertedTokens: new Set(),
      held: new Set(),
    };
    try {
      const result = await this.context.run(txn.id, () => work(txn));
      for (const hash of txn.insertedTokens) {
        if (this.committed.tokens.has(hash)) throw new UniqueViolation('session_refresh_tokens_pkey');
      }
      this.committed = this.view(txn);
      this.committedIds.add(txn.id);
      return result;
    } finally {
      for (const release of txn.releases) release();
    }
  }

  /** What a statement of `txn` sees: the committed rows, then its own writes. */
  private view(txn: Transaction): Tables {
    return {
      sessions: new Map([...this.committed.sessions, ...txn.writes.sessions]),
      tokens: new Map([...this.committed.tokens, ...txn.writes.tokens]),
    };
  }

  private live(s: StoredSession, at: Date): boolean {
    const account = this.accounts.get(s.userId);
    return s.revokedAt === null && s.idleExpiresAt > at && s.expiresAt > at && account?.disabled === false;
  }

  private tables(txn: Transaction): SessionStore {
    const now = txn.startedAt;
    /** A row lock until `txn` ends (FOR UPDATE, and every UPDATE of the row). */
    const lock = async (key: string) => {
      if (txn.held.has(key)) return;
      txn.held.add(key);
      txn.releases.push(await this.locks.acquire(key));
      this.lockLog.push(key);
    };
    /** An UPDATE of a session row: waits for its lock, then changes the newest version if it still matches. */
    const update = async (
      sessionId: string,
      matches: (s: StoredSession) => boolean,
      change: Partial<StoredSession>,
    ) => {
      if (!this.view(txn).sessions.has(sessionId)) return false;
      await lock(`session:${sessionId}`);
      const current = this.view(txn).sessions.get(sessionId);
      if (!current || !matches(current)) return false;
      txn.writes.sessions.set(sessionId, { ...current, ...change });
      return true;
    };
    return {
      now: () => Promise.resolve(now),
      insertSession: (userId, idleExpiresAt, expiresAt) => {
        if (!this.accounts.has(userId))
          throw new Error('insert violates foreign key constraint "sessions_user_id_fkey"');
        const row: StoredSession = {
          id: randomUUID(),
          userId,
          createdAt: now,
          idleExpiresAt,
          expiresAt,
          refreshedAt: null,
          revokedAt: null,
          revokedReason: null,
        };
        txn.writes.sessions.set(row.id, row);
        return Promise.resolve(sessionRow(row));
      },
      insertRefreshToken: (sessionId, tokenHash) => {
        const seen = this.view(txn);
        if (!seen.sessions.has(sessionId)) {
          throw new Error('insert violates foreign key constraint "session_refresh_tokens_session_id_fkey"');
        }
        if (seen.tokens.has(tokenHash)) throw new UniqueViolation('session_refresh_tokens_pkey');
        txn.writes.tokens.set(tokenHash, { tokenHash, sessionId, rotatedAt: null });
        txn.insertedTokens.add(tokenHash);
        return Promise.resolve();
      },
      findRefreshToken: async (tokenHash) => {
        // The statement's snapshot: the token and the account as they were when it started.
        const token = this.view(txn).tokens.get(tokenHash);
        if (!token) return null;
        const account = this.accounts.get(this.view(txn).sessions.get(token.sessionId)?.userId ?? '');
        if (!account) return null;
        // FOR UPDATE OF s, t: wait for both rows, then read their newest versions (PostgreSQL re-reads the rows a
        // statement locked, and only those: the account stays as the snapshot saw it).
        await lock(`session:${token.sessionId}`);
        await lock(`token:${tokenHash}`);
        const session = this.view(txn).sessions.get(token.sessionId);
        const locked = this.view(txn).tokens.get(tokenHash);
        if (!session || !locked) return null;
        return {
          tokenHash,
          rotatedAt: locked.rotatedAt,
          session: sessionRow(session),
          account: { ...account },
        } satisfies PresentedRefreshToken;
      },
      markRotated: async (tokenHash, at) => {
        if (!this.view(txn).tokens.has(tokenHash)) return;
        await lock(`token:${tokenHash}`);
        const current = this.view(txn).tokens.get(tokenHash);
        if (current) txn.writes.tokens.set(tokenHash, { ...current, rotatedAt: at });
      },
      slide: async (sessionId, at, idleExpiresAt) => {
        await update(sessionId, () => true, { refreshedAt: at, idleExpiresAt });
      },
      revoke: (sessionId, reason) =>
        update(sessionId, (s) => s.revokedAt === null, { revokedAt: now, revokedReason: reason }),
      revokeAllOf: async (userId, reason, except) => {
        const candidates = [...this.view(txn).sessions.values()].filter((s) => s.userId === userId && s.id !== except);
        const unrevoked = (s: StoredSession) => s.revokedAt === null && s.expiresAt > now;
        const ids: string[] = [];
        for (const s of candidates.filter(unrevoked)) {
          if (await update(s.id, unrevoked, { revokedAt: now, revokedReason: reason })) ids.push(s.id);
        }
        return ids;
      },
    };
  }
}

function sessionRow(s: StoredSession): SessionRow {
  return {
    id: s.id,
    userId: s.userId,
    createdAt: s.createdAt,
    idleExpiresAt: s.idleExpiresAt,
    expiresAt: s.expiresAt,
    revokedAt: s.revokedAt,
  };
}
