import { HubErrorCode, isHubErrorCode } from '@tessera/protocol';
import { AgentError, AgentErrorCode } from '../agent.error';
import { HubUnavailableError } from '../hub/study-transport';
import type { ReleaseSettlement } from '../state/release-store';
import { Backoff } from './backoff.util';
import type { StepLog } from './task-executor';

/** Tries a delivery this often at least, whatever the local clock says of the deadline. */
export const MIN_DELIVERY_ATTEMPTS = 6;
/** And never more often than this in one go; the daemon polls again later and the release is re-sent. */
export const MAX_DELIVERY_ATTEMPTS = 30;

export interface Delivery {
  clock: () => Date;
  sleep: (ms: number) => Promise<void>;
  log: StepLog;
}

/** What a delivery needs of its task: the round (for the log) and the hub's deadline on this host's clock (ms). */
export interface DeliveryTarget {
  round: number;
  /** localDeadlineMs (hub/hub-clock.ts): receipt time plus the time the hub said was left, never deadlineAt. */
  deadlineMs: number;
}

/** The hub's answer to a delivery: what it returned, or its refusal (HUB_REFUSED, with its code when it named one). */
export type DeliveryResult<T> = { sent: T } | { refusal: AgentError };

/**
 * Sends a release to the hub, telling "try again" from "refused". HUB_UNREACHABLE — a network failure, or the hub's
 * 503 (database outage, storage not writable) with its Retry-After — is retried with backoff: at least
 * MIN_DELIVERY_ATTEMPTS times, then while the hub's deadline (target.deadlineMs) has not passed. The caller sends
 * the same bytes every time (the hub answers a re-sent accepted update with its receipt). A refusal (HUB_REFUSED,
 * 409 and other 4xx) ends this delivery: returned for the caller to record (settlementOfRefusal). Anything else,
 * and retries given up, propagate to the daemon, which polls again and re-sends the persisted release (before the
 * study's next task, or as the task if the hub still offers it).
 */
export async function deliver<T>(
  d: Delivery,
  target: DeliveryTarget,
  study: string,
  what: string,
  send: () => Promise<T>,
): Promise<DeliveryResult<T>> {
  const backoff = new Backoff();
  for (let attempt = 1; ; attempt++) {
    try {
      return { sent: await send() };
    } catch (err) {
      if (!(err instanceof AgentError)) throw err;
      if (err.code === AgentErrorCode.HUB_REFUSED) {
        d.log({ study, round: target.round, message: `${what} refused: ${err.message}` });
        return { refusal: err };
      }
      if (err.code !== AgentErrorCode.HUB_UNREACHABLE) throw err;
      const asked = err instanceof HubUnavailableError ? err.retryAfterMs : null;
      const delay = Math.max(backoff.next(), asked ?? 0);
      const late = d.clock().getTime() + delay >= target.deadlineMs;
      if (attempt >= MAX_DELIVERY_ATTEMPTS || (attempt >= MIN_DELIVERY_ATTEMPTS && late)) throw err;
      d.log({
        study,
        round: target.round,
        message: `${what} failed (${err.message}); retrying in ${delay / 1000} s${asked !== null ? ' as the hub asked' : ''}`,
      });
      await d.sleep(delay);
    }
  }
}

/**
 * Hub codes that refuse a release for good, whatever is sent again: it was made on another model or plan version,
 * for a study this silo is no longer in, or the hub will not read it.
 */
const REFUSED_FOR_GOOD: readonly HubErrorCode[] = [
  HubErrorCode.WRONG_MODEL,
  HubErrorCode.STALE_PLAN,
  HubErrorCode.NOT_FOUND,
  HubErrorCode.NOT_A_PARTICIPANT,
  HubErrorCode.UPDATE_MALFORMED,
  HubErrorCode.UPDATE_TOO_LARGE,
  HubErrorCode.VALIDATION_FAILED,
];

/**
 * What a refusal of a release settles (release-store.ts, ReleaseSettlement), or null when it settles nothing and the
 * release is to be asked about again later. From the hub's update acceptance (apps/hub/src/rounds):
 * - ROUND_CLOSED: no round of that number is open and the hub holds no update of this silo for it (it answers an
 *   accepted one with its receipt instead), the round's deadline passed before this one arrived, or the round
 *   number only evaluates now (the privacy budget ended its training): the round closed without it. For an evaluation report, which has no receipt, the hub no longer says whether it holds it.
 * - DUPLICATE_UPDATE for an evaluation report: this silo already reported that round.
 * - REFUSED_FOR_GOOD: refused whatever is sent again.
 * Anything else settles nothing: DUPLICATE_UPDATE for an update (the hub holds another sending of this silo for an
 * open round; once it closes, the hub answers the one it accepted with its receipt), WRONG_ROUND (the round number
 * is not open yet, or is the final evaluation), a 5xx, or an answer without a code.
 */
export function settlementOfRefusal(
  refusal: AgentError,
  release: 'update' | 'evaluation',
  now: Date,
): ReleaseSettlement | null {
  const code = refusal.hubCode ?? null;
  const settled = (outcome: ReleaseSettlement['outcome']): ReleaseSettlement => ({
    outcome,
    hubCode: code,
    message: refusal.message.slice(0, 2000),
    settledAt: now.toISOString(),
  });
  // A code this agent does not know (a newer hub) is not one it may settle on.
  if (refusal.code !== AgentErrorCode.HUB_REFUSED || !isHubErrorCode(code)) return null;
  if (code === HubErrorCode.ROUND_CLOSED) return settled('round-closed');
  if (code === HubErrorCode.DUPLICATE_UPDATE) return release === 'evaluation' ? settled('reported') : null;
  return REFUSED_FOR_GOOD.includes(code) ? settled('refused') : null;
}

/** What a settlement means, for the log: "the update …" / "the evaluation report …". */
export function describeSettlement(settlement: ReleaseSettlement, release: 'update' | 'evaluation'): string {
  const code = settlement.hubCode === null ? '' : ` (${settlement.hubCode})`;
  switch (settlement.outcome) {
    case 'reported':
      return `is held by the hub${code}: settled`;
    case 'round-closed':
      return release === 'update'
        ? `was not accepted: its round closed without it${code}; it stays on file, settled, and is not sent again`
        : `was refused because its round closed${code}; evaluation reports carry no receipt, so whether the hub holds an earlier sending shows only in the hub's report; it stays on file, settled, and is not sent again`;
    case 'refused':
      return `was refused for good${code}: ${settlement.message}; it stays on file, settled, and is not sent again`;
  }
}
