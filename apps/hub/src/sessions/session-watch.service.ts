import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { SessionsService } from './sessions.service';

/** How often the sessions of open long-lived responses are checked (ms): a revoked session's stream ends within it. */
export const SESSION_WATCH_MS = 1_000;

/**
 * Ends long-lived responses (the console's live event streams) whose session ends while they are open: sign-out,
 * a disabled account, a password or role change, a replayed refresh token, or the session's expiry. A stream is
 * authorised once, when it opens; without this it would keep receiving events after its session was revoked.
 *
 * One query per tick for every watched session (not one per stream), read from the database, so a revocation on
 * another replica ends the stream here too.
 */
@Injectable()
export class SessionWatch implements OnApplicationShutdown {
  private readonly logger = new Logger(SessionWatch.name);
  private readonly watchers = new Map<string, Set<() => void>>();
  private timer: NodeJS.Timeout | null = null;
  private checking = false;

  constructor(private readonly sessions: SessionsService) {}

  /** Calls `onEnd` once when the session ends; returns the function that stops watching. */
  watch(sessionId: string, onEnd: () => void): () => void {
    let set = this.watchers.get(sessionId);
    if (!set) {
      set = new Set();
      this.watchers.set(sessionId, set);
    }
    set.add(onEnd);
    this.schedule();
    return () => this.unwatch(sessionId, onEnd);
  }

  /** Sessions watched now. */
  watchedSessions(): number {
    return this.watchers.size;
  }

  /** Checks every watched session once, now; resolves when the ended ones were told. */
  async check(): Promise<void> {
    if (this.checking || this.watchers.size === 0) return;
    this.checking = true;
    try {
      const ids = [...this.watchers.keys()];
      const live = await this.sessions.activeAmong(ids);
      for (const id of ids) {
        if (live.has(id)) continue;
        const ended = this.watchers.get(id);
        this.watchers.delete(id);
        for (const onEnd of ended ?? []) onEnd();
      }
    } catch (err) {
      // The database restarting: the streams stay open and the next tick checks again (as the live feed does).
      this.logger.warn(`cannot check the sessions of open streams: ${(err as Error).message}`);
    } finally {
      this.checking = false;
    }
  }

  onApplicationShutdown(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.watchers.clear();
  }

  private unwatch(sessionId: string, onEnd: () => void): void {
    const set = this.watchers.get(sessionId);
    if (!set) return;
    set.delete(onEnd);
    if (set.size === 0) this.watchers.delete(sessionId);
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.check().finally(() => {
        if (this.watchers.size > 0) this.schedule();
      });
    }, SESSION_WATCH_MS);
    this.timer.unref();
  }
}
