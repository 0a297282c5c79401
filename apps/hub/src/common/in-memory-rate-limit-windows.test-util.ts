import type { CountedCall, RateLimitRule, RateLimitWindows } from './rate-limit-windows.repository';

interface WindowRow {
  hits: number;
  windowEndsAt: number;
  blockedUntil: number | null;
}

/**
 * `rate_limit_windows` in memory, keyed like the table (key, limit name), counting by the same rule as
 * RateLimitWindows' statement against a clock the spec moves (`advance`), in milliseconds. Each count is one atomic
 * step, as the statement is under its row's lock.
 */
export class InMemoryRateLimitWindows implements Pick<RateLimitWindows, 'count' | 'pruneEnded'> {
  private readonly rows = new Map<string, WindowRow>();
  private clock = Date.UTC(2026, 11, 7, 12);
  pruneCalls = 0;
  /** Makes the next prunes fail, as a lost connection would. */
  failPrunes = false;

  advance(ms: number): void {
    this.clock += ms;
  }

  /** A row as it stands, for assertions and given state. */
  row(key: string, limitName: string): WindowRow | undefined {
    return this.rows.get(`${key}\u0000${limitName}`);
  }

  seed(key: string, limitName: string, row: WindowRow): void {
    this.rows.set(`${key}\u0000${limitName}`, { ...row });
  }

  get now(): number {
    return this.clock;
  }

  async count(key: string, limitName: string, rule: RateLimitRule): Promise<CountedCall> {
    await Promise.resolve();
    const now = this.clock;
    const id = `${key}\u0000${limitName}`;
    const w = this.rows.get(id);
    let next: WindowRow;
    if (!w) next = { hits: 1, windowEndsAt: now + rule.windowMs, blockedUntil: null };
    else if (w.blockedUntil !== null && w.blockedUntil > now) next = { ...w };
    else if (w.blockedUntil !== null || w.windowEndsAt <= now) {
      next = { hits: 1, windowEndsAt: now + rule.windowMs, blockedUntil: null };
    } else {
      next = {
        hits: w.hits + 1,
        windowEndsAt: w.windowEndsAt,
        blockedUntil: w.hits + 1 > rule.limit ? now + rule.blockMs : null,
      };
    }
    this.rows.set(id, next);
    return {
      hits: next.hits,
      windowEndsInSeconds: Math.ceil((next.windowEndsAt - now) / 1000),
      blockedForSeconds: next.blockedUntil === null ? 0 : Math.ceil((next.blockedUntil - now) / 1000),
    };
  }

  async pruneEnded(): Promise<number> {
    await Promise.resolve();
    this.pruneCalls += 1;
    if (this.failPrunes) throw new Error('connection terminated');
    const horizon = this.clock - 3_600_000;
    let deleted = 0;
    for (const [id, w] of this.rows) {
      if (w.windowEndsAt < horizon && (w.blockedUntil === null || w.blockedUntil < horizon)) {
        this.rows.delete(id);
        deleted += 1;
      }
    }
    return deleted;
  }
}
