import type { IncomingHttpHeaders } from 'node:http';
import { Injectable, Optional, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import {
  AGENT_HEADER,
  AGENT_TASK_HEADER,
  agentOfflineAfterSeconds,
  parseAgentHeader,
  parseAgentTaskHeader,
  SILO_STUDY_API,
  type AgentSoftware,
  type AgentTask,
  type SiloAgentView,
} from '@tessera/protocol';
import { InjectPinoLogger, PinoLogger } from 'nestjs-pino';
import { IntervalTask } from '../audit/interval-task.util';
import { SilosRepository } from './silos.repository';

/** What the hub has seen of each silo's agent is written to `silos` this often (ms), and when the hub stops. */
export const PRESENCE_FLUSH_INTERVAL_MS = 15_000;

export type PresenceListener = 'silo' | 'enroll';

/** One request of an agent, as the listener received it. */
export interface AgentContact {
  headers: IncomingHttpHeaders;
  /** The request's path and query (the long poll's `wait` sets the agent's offline window). */
  url?: string;
  /** Registers the callback to run when the request ends or its connection closes (whichever comes first). */
  onEnd: (done: () => void) => void;
}

/** The columns of `silos` that presence reads and writes. */
export interface StoredPresence {
  lastSeenAt: Date | null;
  enrollLastSeenAt: Date | null;
  agentVersion: string | null;
  agentPlatform: string | null;
  agentNode: string | null;
}

interface Seen {
  open: number;
  /** ms; the end of the last request that ended, or the start of the newest one if later. */
  lastSilo: number | null;
  lastEnroll: number | null;
  software: AgentSoftware | null;
  task: { task: AgentTask; since: number } | null;
  /** The wait (s) the agent's last long poll asked for: its poll interval. */
  pollWait: number | null;
  /** Something changed that `silos` does not hold yet. */
  dirty: boolean;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The `wait` of a long poll (GET /silo/v1/tasks?wait=N), or null for any other request. */
export function pollWaitOf(url: string | undefined): number | null {
  if (url === undefined) return null;
  const parsed = new URL(url, 'https://hub.invalid');
  if (parsed.pathname !== SILO_STUDY_API.tasks) return null;
  const wait = Number(parsed.searchParams.get('wait'));
  return Number.isInteger(wait) && wait >= 1 ? wait : null;
}

function sameTask(a: AgentTask, b: AgentTask): boolean {
  return a.kind === b.kind && a.studyId === b.studyId && a.round === b.round;
}

const later = (a: number | null, b: Date | null): number | null =>
  b === null ? a : a === null ? b.getTime() : Math.max(a, b.getTime());

/**
 * What the hub sees of each silo's agent, from facts only: which of its requests are open now (a long poll waiting
 * for work is one), when the last one on each listener ended, what the agent says it runs (x-tessera-agent) and which
 * task it says it is carrying out (x-tessera-agent-task). Kept in memory, since it changes on every request, and
 * written to `silos` every PRESENCE_FLUSH_INTERVAL_MS and at shutdown, so the last-seen times and the version survive
 * a restart. The open requests are this process's own: with several hub replicas each sees the polls it serves, and
 * the console's answer comes from one of them (docs/operator-guide.md, "Silo health").
 */
@Injectable()
export class SiloPresence implements OnModuleInit, OnModuleDestroy {
  private readonly seen = new Map<string, Seen>();
  private readonly schedule: IntervalTask;
  private readonly now: () => number;

  constructor(
    private readonly store: SilosRepository,
    @InjectPinoLogger('SiloPresence') private readonly logger: PinoLogger,
    @Optional() now?: () => number,
  ) {
    this.now = now ?? Date.now;
    this.schedule = new IntervalTask(
      PRESENCE_FLUSH_INTERVAL_MS,
      () => this.flush(),
      (err) => this.logger.warn({ err }, 'writing what the hub saw of silo agents failed; trying again'),
    );
  }

  onModuleInit(): void {
    this.schedule.start();
  }

  async onModuleDestroy(): Promise<void> {
    await this.schedule.stop();
    try {
      await this.flush();
    } catch (err) {
      // The database may already be gone; the last-seen times of the final seconds are lost, nothing else.
      this.logger.warn({ err }, 'writing what the hub saw of silo agents at shutdown failed');
    }
  }

  /**
   * A request of the silo's agent has started on `listener`: counted open until it ends, then its end is the
   * silo's last-seen time on that listener. The agent's headers update its software and current task (a request
   * without the task header means it is not carrying out one).
   */
  opened(siloId: string, listener: PresenceListener, contact: AgentContact): void {
    const entry = this.entry(siloId);
    const at = this.now();
    this.mark(entry, listener, at);
    const software = parseAgentHeader(single(contact.headers[AGENT_HEADER]));
    if (software && JSON.stringify(software) !== JSON.stringify(entry.software)) {
      entry.software = software;
      entry.dirty = true;
    }
    if (listener === 'silo') {
      const task = parseAgentTaskHeader(single(contact.headers[AGENT_TASK_HEADER]));
      if (task === null) entry.task = null;
      else if (entry.task === null || !sameTask(entry.task.task, task)) entry.task = { task, since: at };
    }
    if (listener !== 'silo') return;
    const wait = pollWaitOf(contact.url);
    if (wait !== null) entry.pollWait = wait;
    entry.open++;
    let ended = false;
    contact.onEnd(() => {
      if (ended) return;
      ended = true;
      entry.open = Math.max(0, entry.open - 1);
      this.mark(entry, listener, this.now());
    });
  }

  /**
   * The agent's facts for the API: this process's memory over what `silos` holds (the later time wins, so a restart
   * keeps the last-seen times and a replica shows what another one wrote).
   */
  view(siloId: string, stored: StoredPresence): SiloAgentView {
    const entry = this.seen.get(siloId);
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    const storedSoftware: AgentSoftware | null =
      stored.agentVersion && stored.agentPlatform
        ? { version: stored.agentVersion, platform: stored.agentPlatform, node: stored.agentNode ?? '' }
        : null;
    return {
      openRequests: entry?.open ?? 0,
      lastSeen: {
        silo: iso(later(entry?.lastSilo ?? null, stored.lastSeenAt)),
        enroll: iso(later(entry?.lastEnroll ?? null, stored.enrollLastSeenAt)),
      },
      software: entry?.software ?? storedSoftware,
      task: entry?.task ? { ...entry.task.task, since: new Date(entry.task.since).toISOString() } : null,
      offlineAfterSeconds: agentOfflineAfterSeconds(entry?.pollWait ?? null),
      observedAt: new Date(this.now()).toISOString(),
    };
  }

  /** Writes every changed entry to `silos`; a silo deleted meanwhile is simply not updated. */
  async flush(): Promise<void> {
    for (const [siloId, entry] of this.seen) {
      if (!entry.dirty) continue;
      entry.dirty = false;
      try {
        await this.store.writePresence(siloId, {
          lastSeenAt: entry.lastSilo === null ? null : new Date(entry.lastSilo).toISOString(),
          enrollLastSeenAt: entry.lastEnroll === null ? null : new Date(entry.lastEnroll).toISOString(),
          software: entry.software,
        });
      } catch (err) {
        entry.dirty = true;
        throw err;
      }
    }
  }

  private entry(siloId: string): Seen {
    let entry = this.seen.get(siloId);
    if (!entry) {
      entry = { open: 0, lastSilo: null, lastEnroll: null, software: null, task: null, pollWait: null, dirty: false };
      this.seen.set(siloId, entry);
    }
    return entry;
  }

  private mark(entry: Seen, listener: PresenceListener, at: number): void {
    if (listener === 'silo') entry.lastSilo = Math.max(entry.lastSilo ?? 0, at);
    else entry.lastEnroll = Math.max(entry.lastEnroll ?? 0, at);
    entry.dirty = true;
  }
}
