import type { SiloTask } from '@tessera/protocol';

/** A difference between this host's clock and the hub's beyond this is reported (ms). */
export const CLOCK_SKEW_WARNING_MS = 30_000;

/** An HTTP Date header has whole-second resolution (RFC 9110 section 5.6.7): the hub's time lies within 1 s of it. */
const DATE_HEADER_RESOLUTION_MS = 1_000;

/**
 * The hub's deadline for a task as an instant on this host's clock (ms since the epoch): the local time the task was
 * received plus the time the hub said was left. Judged this way, a host clock running ahead or behind the hub's
 * neither drops a task as past nor overruns it; only the network delay of the answer (milliseconds) is lost.
 */
export function localDeadlineMs(task: SiloTask, receivedAtMs: number): number {
  return receivedAtMs + task.deadlineInMs;
}

/**
 * How far this host's clock runs ahead of the hub's (ms; negative when behind), from a task received at
 * `receivedAtMs`: the hub's time when it answered is deadlineAt − deadlineInMs. Null once the deadline had passed
 * at the hub (deadlineInMs is then 0 and says nothing about its clock).
 */
export function skewFromTask(task: SiloTask, receivedAtMs: number): number | null {
  if (task.deadlineInMs <= 0) return null;
  return receivedAtMs - (Date.parse(task.deadlineAt) - task.deadlineInMs);
}

/**
 * How far this host's clock runs ahead of the hub's (ms), from the Date header of an answer received at
 * `receivedAtMs`; the header is truncated to the second, so the middle of that second is taken. Null when absent or
 * unreadable.
 */
export function skewFromDateHeader(date: string | undefined, receivedAtMs: number): number | null {
  if (date === undefined) return null;
  const hubMs = Date.parse(date);
  if (!Number.isFinite(hubMs)) return null;
  return receivedAtMs - (hubMs + DATE_HEADER_RESOLUTION_MS / 2);
}

/** "3 h 0 min" / "95 s": a clock difference in words an operator reads at a glance. */
export function formatSkew(ms: number): string {
  const seconds = Math.round(Math.abs(ms) / 1000);
  if (seconds < 3600) return `${seconds} s`;
  const minutes = Math.round(seconds / 60);
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min (${seconds} s)`;
}

/**
 * Watches the difference between this host's clock and the hub's, from the Date header of every answer and from
 * every task, and warns once when it exceeds the threshold. The agent does not need the clocks to agree (deadlines
 * are judged from the time the hub says is left, certificates with a tolerance; see hub-client.ts), but an operator
 * should know: logs, receipts and the privacy ledger carry this host's time.
 */
export class HubClock {
  private warned = false;
  private last: number | null = null;

  constructor(
    private readonly warn: (message: string) => void,
    private readonly thresholdMs = CLOCK_SKEW_WARNING_MS,
  ) {}

  /** The latest estimate (ms this host runs ahead of the hub; negative when behind), null before any. */
  get skewMs(): number | null {
    return this.last;
  }

  /** An answer's Date header, read at `receivedAtMs` on this host's clock. */
  observeDateHeader(date: string | undefined, receivedAtMs: number): void {
    // Half a second of rounding either way: only a difference beyond it counts against the threshold.
    this.observe(skewFromDateHeader(date, receivedAtMs), DATE_HEADER_RESOLUTION_MS / 2);
  }

  /** A task, received at `receivedAtMs` on this host's clock. */
  observeTask(task: SiloTask, receivedAtMs: number): void {
    this.observe(skewFromTask(task, receivedAtMs), 0);
  }

  private observe(skewMs: number | null, uncertaintyMs: number): void {
    if (skewMs === null) return;
    this.last = skewMs;
    if (this.warned || Math.abs(skewMs) - uncertaintyMs <= this.thresholdMs) return;
    this.warned = true;
    this.warn(
      `WARNING: this host's clock is ${formatSkew(skewMs)} ${skewMs > 0 ? 'ahead of' : 'behind'} the hub's; ` +
        "deadlines are judged by the hub's clock and the hub's certificate with a tolerance, but this host's logs, " +
        'receipts and privacy ledger carry its own time: fix its time synchronisation (NTP)',
    );
  }
}
