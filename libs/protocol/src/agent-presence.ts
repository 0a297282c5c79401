// What an agent says about itself on every call to the hub, and what the hub shows administrators about it: the
// agent's version and platform, and the task it is carrying out. Plain strings in two request headers, so a proxy
// or a log shows them too; nothing in them is patient data.

/** `tessera-agent/<version> (<os>-<arch>; node <version>)`, sent on every call to the hub. */
export const AGENT_HEADER = 'x-tessera-agent';
/** `<train|evaluate> <studyId> <round>` while the agent carries out a task; absent while it waits for work. */
export const AGENT_TASK_HEADER = 'x-tessera-agent-task';

/** The longest long-poll wait the hub grants, in seconds. */
export const MAX_LONG_POLL_SECONDS = 30;
/** Seconds an agent may take between the end of one request and the next (a reconnect, a slow TLS handshake). */
export const AGENT_RECONNECT_GRACE_SECONDS = 10;

/**
 * An agent with no request open counts online this long after its last request ended: its long-poll interval (it
 * polls again at once, and heartbeats at that interval while it trains) plus a grace for the reconnect. The interval
 * is the wait its last poll asked for, or the longest the hub grants when it is not known. Seconds.
 */
export function agentOfflineAfterSeconds(pollWaitSeconds: number | null): number {
  const wait =
    pollWaitSeconds !== null && Number.isInteger(pollWaitSeconds) && pollWaitSeconds >= 1
      ? Math.min(pollWaitSeconds, MAX_LONG_POLL_SECONDS)
      : MAX_LONG_POLL_SECONDS;
  return wait + AGENT_RECONNECT_GRACE_SECONDS;
}

export interface AgentSoftware {
  /** The agent's release, e.g. 0.1.0. */
  version: string;
  /** Operating system and CPU, e.g. linux-x64. */
  platform: string;
  /** The Node.js version it runs on, e.g. 22.11.0. */
  node: string;
}

export interface AgentTask {
  kind: 'train' | 'evaluate';
  studyId: string;
  round: number;
}

// Conservative token alphabets: what is stored and shown is never free text from the network.
const VERSION = '[0-9A-Za-z][0-9A-Za-z.+-]{0,39}';
const AGENT_PATTERN = new RegExp(
  `^tessera-agent/(${VERSION}) \\(([a-z0-9]{1,16}-[a-z0-9_]{1,16}); node (${VERSION})\\)$`,
);
const TASK_PATTERN = /^(train|evaluate) ([0-9a-f-]{36}) (\d{1,9})$/;

/** The AGENT_HEADER value for this software. Throws when a part would not parse back (see parseAgentHeader). */
export function formatAgentHeader(software: AgentSoftware): string {
  const value = `tessera-agent/${software.version} (${software.platform}; node ${software.node})`;
  if (parseAgentHeader(value) === null) throw new Error(`not a valid ${AGENT_HEADER} value: ${value}`);
  return value;
}

/** The software an AGENT_HEADER names, or null when the value is absent or not in the format (never guessed). */
export function parseAgentHeader(value: string | undefined): AgentSoftware | null {
  if (value === undefined) return null;
  const m = AGENT_PATTERN.exec(value);
  if (!m) return null;
  return { version: m[1]!, platform: m[2]!, node: m[3]! };
}

export function formatAgentTaskHeader(task: AgentTask): string {
  return `${task.kind} ${task.studyId} ${task.round}`;
}

/** The task an AGENT_TASK_HEADER names, or null when absent or not in the format. */
export function parseAgentTaskHeader(value: string | undefined): AgentTask | null {
  if (value === undefined) return null;
  const m = TASK_PATTERN.exec(value);
  if (!m) return null;
  return { kind: m[1] as AgentTask['kind'], studyId: m[2]!, round: Number(m[3]) };
}
