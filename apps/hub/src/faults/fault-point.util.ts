/**
 * Test-only crash points for the fault-injection suite (apps/hub/src/faults/*.int-spec.ts, docs/reliability.md).
 *
 * `TESSERA_FAULT_POINT=<name>` (or `<name>@<n>`: the n-th time the point is reached, default the first) makes the hub
 * process kill itself with SIGKILL at that point in the code, exactly as a power cut or an OOM kill would: no
 * `finally` blocks, no rollback message to the database (PostgreSQL rolls an open transaction back when its
 * connection drops). With `TESSERA_FAULT_STALL_MS=<ms>` the process instead pauses that long at the point (so a test
 * can kill a client while the hub holds its answer). Refused when NODE_ENV is production (assertFaultInjectionAllowed
 * runs at boot); not a configuration variable: no deployment should ever set them.
 */
export const FAULT_POINTS = [
  /** Inside the acceptance transaction, after the update's row and audit record are written, before COMMIT. */
  'before-accept-commit',
  /** After the acceptance transaction committed, before the receipt is answered. */
  'after-accept-commit',
  /** After a claimed round's updates were aggregated and the result stored, before the closing transaction. */
  'after-aggregation',
  /** Inside a round's closing transaction (aggregate stored, next round opened, records written), before COMMIT. */
  'before-close-commit',
  /** After a round's closing transaction committed. */
  'after-close-commit',
  /** Secure aggregation: after a silo's message of that stage was stored and committed, before it is answered. */
  'secagg-advertise-committed',
  'secagg-share-committed',
  'secagg-upload-committed',
  'secagg-unmask-committed',
] as const;

export type FaultPoint = (typeof FAULT_POINTS)[number];

const ENV = 'TESSERA_FAULT_POINT';

interface ParsedFault {
  point: FaultPoint;
  /** Kill at this hit of the point (1-based). */
  hit: number;
}

/** The configured fault, or null; throws naming the problem for a value that names no point. */
export function parseFaultPoint(value: string | undefined): ParsedFault | null {
  if (value === undefined || value === '') return null;
  const m = /^([a-z-]+)(?:@([1-9]\d{0,5}))?$/.exec(value);
  const point = FAULT_POINTS.find((p) => p === m?.[1]);
  if (!m || !point) {
    throw new Error(`${ENV}=${value} names no fault point; known points: ${FAULT_POINTS.join(', ')} (optionally @n)`);
  }
  return { point, hit: m[2] ? Number(m[2]) : 1 };
}

/** Refuses to boot a production hub with a fault point set (it would crash on purpose). */
export function assertFaultInjectionAllowed(env: NodeJS.ProcessEnv = process.env): void {
  const fault = parseFaultPoint(env[ENV]);
  if (fault && env.NODE_ENV === 'production') {
    throw new Error(`${ENV} is a test-only crash switch and is refused when NODE_ENV=production; unset it.`);
  }
}

const hits = new Map<FaultPoint, number>();
let configured: ParsedFault | null | undefined;

/**
 * Kills this process with SIGKILL (or stalls it, TESSERA_FAULT_STALL_MS) when the configured fault point is reached
 * for the configured time; resolves at once otherwise.
 */
export async function faultPoint(point: FaultPoint): Promise<void> {
  if (configured === undefined) configured = parseFaultPoint(process.env[ENV]);
  if (configured === null || configured.point !== point || process.env.NODE_ENV === 'production') return;
  const n = (hits.get(point) ?? 0) + 1;
  hits.set(point, n);
  if (n !== configured.hit) return;
  const stall = Number(process.env.TESSERA_FAULT_STALL_MS ?? '0');
  if (Number.isSafeInteger(stall) && stall > 0) {
    process.stderr.write(`TESSERA_FAULT_POINT: stalling ${stall} ms at ${point} (hit ${n})\n`);
    await new Promise((r) => setTimeout(r, stall));
    return;
  }
  process.stderr.write(`TESSERA_FAULT_POINT: killing the hub at ${point} (hit ${n})\n`);
  process.kill(process.pid, 'SIGKILL');
}
