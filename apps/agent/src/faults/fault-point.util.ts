/**
 * Test-only crash points of the agent, for the secure-aggregation dropout suite
 * (apps/hub/src/faults/secagg-dropouts.int-spec.ts, docs/reliability.md "Crash points").
 *
 * `TESSERA_AGENT_FAULT_POINT=<name>` (or `<name>@<n>`: the n-th time the point is reached in this process, default
 * the first) makes the agent kill itself with SIGKILL at that point, as a power cut or an OOM kill at a hospital
 * would: no `finally` blocks run and nothing more is sent. Inert when the variable is unset; refused when NODE_ENV is
 * production (assertAgentFaultInjectionAllowed runs when `tessera-agent run` starts). Not a configuration variable:
 * no deployment should ever set it. The hub's own points are TESSERA_FAULT_POINT (apps/hub/src/faults).
 */
export const AGENT_FAULT_POINTS = [
  /** Secure aggregation: the hub acknowledged this silo's key advertisement; nothing shared yet. */
  'secagg-advertised',
  /** Secure aggregation: the hub acknowledged this silo's encrypted shares; its masked input not yet sent. */
  'secagg-shared',
  /** Secure aggregation: the hub acknowledged this silo's masked input; the unmasking request not yet read. */
  'secagg-uploaded',
] as const;

export type AgentFaultPoint = (typeof AGENT_FAULT_POINTS)[number];

const ENV = 'TESSERA_AGENT_FAULT_POINT';

interface ParsedAgentFault {
  point: AgentFaultPoint;
  /** Kill at this hit of the point (1-based). */
  hit: number;
}

/** The configured fault, or null; throws naming the problem for a value that names no point. */
export function parseAgentFaultPoint(value: string | undefined): ParsedAgentFault | null {
  if (value === undefined || value === '') return null;
  const m = /^([a-z-]+)(?:@([1-9]\d{0,5}))?$/.exec(value);
  const point = AGENT_FAULT_POINTS.find((p) => p === m?.[1]);
  if (!m || !point) {
    throw new Error(
      `${ENV}=${value} names no fault point; known points: ${AGENT_FAULT_POINTS.join(', ')} (optionally @n)`,
    );
  }
  return { point, hit: m[2] ? Number(m[2]) : 1 };
}

/** Refuses to run a production agent with a fault point set (it would crash on purpose). */
export function assertAgentFaultInjectionAllowed(env: NodeJS.ProcessEnv = process.env): void {
  const fault = parseAgentFaultPoint(env[ENV]);
  if (fault && env.NODE_ENV === 'production') {
    throw new Error(`${ENV} is a test-only crash switch and is refused when NODE_ENV=production; unset it.`);
  }
}

const hits = new Map<AgentFaultPoint, number>();
let configured: ParsedAgentFault | null | undefined;

/** Kills this process with SIGKILL when the configured fault point is reached for the configured time. */
export function agentFaultPoint(point: AgentFaultPoint, env: NodeJS.ProcessEnv = process.env): void {
  if (configured === undefined) configured = parseAgentFaultPoint(env[ENV]);
  if (configured === null || configured.point !== point || env.NODE_ENV === 'production') return;
  const n = (hits.get(point) ?? 0) + 1;
  hits.set(point, n);
  if (n !== configured.hit) return;
  process.stderr.write(`TESSERA_AGENT_FAULT_POINT: killing the agent at ${point} (hit ${n})\n`);
  process.kill(process.pid, 'SIGKILL');
}
